"""Synthetic tweets whose labels have a known dependency on the two inputs.

Each "author" writes with its own first-order character Markov chain: a mix of a background
chain shared by everyone and an author-specific chain over a small palette of characters. A
sample is a pair of tweets (tweet_a by author a, tweet_b by author b); every task is a function
of the two authors, so which input a label needs is known in advance. Because the chains are
known exactly, the Bayes-optimal accuracy of every task from tweet_a alone, tweet_b alone, both
or neither can be computed on any sample set; those are the reference accuracies.

Characters are stored as int16 codes in [0, features) with -1 for padding; tweets are
pre-padded (text at the end), as `keras.utils.pad_sequences` does by default, so an LSTM's last
state has just read the text.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A step a tweet does not have: an all-zero one-hot row; the same code as probes' one-hot PAD
# (defined again here, not imported: the report reads tweets without importing the probes).
PAD = -1
# References are named by what the Bayes-optimal predictor is allowed to read.
REFERENCE_SOURCES = ("neither", "tweet_a", "tweet_b", "both")
# Model input name -> TweetSet field holding its codes.
INPUTS_OF_SET = {"tweet_a": "codes_a", "tweet_b": "codes_b"}


TASKS = {
    "both_in_group": lambda a, b, g: g[a] & g[b],
    "either_in_group": lambda a, b, g: g[a] | g[b],
    "group_a": lambda a, b, g: g[a] & np.ones_like(g[b]),
    "group_b": lambda a, b, g: np.ones_like(g[a]) & g[b],
    "same_author": lambda a, b, g: a == b,
    "xor": lambda a, b, g: g[a] ^ g[b],
}
# Tasks on a property of the text rather than its author: the tweet is longer than the world's
# `long_threshold` characters. Task name -> TweetSet field whose length decides the label.
LENGTH_TASKS = {"long_a": "codes_a", "long_b": "codes_b"}
TASK_NAMES = tuple(sorted([*TASKS, *LENGTH_TASKS]))
DEFAULT_TASKS = ("both_in_group", "either_in_group")


@dataclasses.dataclass(frozen=True)
class TweetSpec:
    """Everything that defines the synthetic world (not the samples drawn from it).

    Args:
        seq_len: padded length T of a tweet.
        features: one-hot width F; codes are in [0, F).
        n_authors: number of authors K, drawn uniformly.
        n_group: authors 0..n_group-1 form "the group" used by the group tasks. The default 3 of
            5 (60%) keeps every Bayes decision away from a 50/50 tie.
        min_len: shortest tweet; lengths are uniform in [min_len, seq_len].
        style: weight of the author-specific chain against the shared background (0..1).
        same_rate: probability that tweet_b is written by tweet_a's author; otherwise the two
            authors are independent. 0.5 balances `same_author`.
        world_seed: seed of the authors' chains.
    """

    seq_len: int = 280
    features: int = 256
    n_authors: int = 5
    n_group: int = 3
    min_len: int = 40
    style: float = 0.7
    same_rate: float = 0.0
    world_seed: int = 0

    def __post_init__(self):
        _check(self.seq_len >= 2, "seq_len >= 2", self.seq_len)
        _check(self.features >= 4, "features >= 4", self.features)
        _check(self.n_authors >= 2, "n_authors >= 2", self.n_authors)
        _check(0 < self.n_group < self.n_authors, f"0 < n_group < n_authors={self.n_authors}",
               self.n_group)
        _check(1 <= self.min_len <= self.seq_len, f"1 <= min_len <= seq_len={self.seq_len}",
               self.min_len)
        _check(0.0 <= self.style <= 1.0, "style in [0, 1]", self.style)
        _check(0.0 <= self.same_rate <= 1.0, "same_rate in [0, 1]", self.same_rate)

    @property
    def group(self) -> np.ndarray:
        """Boolean membership of each author, shape (K,)."""
        return np.arange(self.n_authors) < self.n_group

    @property
    def long_threshold(self) -> float:
        """A tweet is "long" (tasks long_a, long_b) above this many characters: the midpoint of
        the length range, so about half the tweets are long."""
        return (self.min_len + self.seq_len) / 2

    @property
    def temperature(self) -> float:
        """The references use the true chains: their likelihoods need no tempering."""
        return 1.0

    def pair_prior(self) -> np.ndarray:
        """Joint probability of (author_a, author_b), shape (K, K)."""
        k = self.n_authors
        p = np.full(k, 1.0 / k)
        return self.same_rate * np.diag(p) + (1.0 - self.same_rate) * np.outer(p, p)

    def long_prior(self) -> float:
        """P(a tweet is long) under the uniform length distribution."""
        lengths = np.arange(self.min_len, self.seq_len + 1)
        return float(np.mean(lengths > self.long_threshold))

    def chains(self) -> "Chains":
        """The authors' chains (the same for every call)."""
        return make_chains(self)

    def draw(self, n: int, rng: np.random.Generator, split: str = "train") -> "TweetSet":
        """`n` pairs from this world; `split` is ignored (every split comes from the chains)."""
        return generate(self, n, rng)


def _check(ok, expected, received):
    if not ok:
        raise ValueError(f"Expected {expected}; received {received!r}")


def check_tasks(tasks) -> tuple[str, ...]:
    """Validate task names; returns them as a tuple."""
    tasks = tuple(tasks)
    for name in tasks:
        if name not in TASK_NAMES:
            raise ValueError(f"Expected a task in {list(TASK_NAMES)}; received {name!r}")
    return tasks


@dataclasses.dataclass(frozen=True)
class Chains:
    """The authors' Markov chains over an alphabet of V symbols.

    Attributes:
        alphabet: (V,) the code of each symbol in [0, features).
        initial: (K, V) first-character probabilities.
        transition: (K, V, V) next-character probabilities given the previous one.
    """

    alphabet: np.ndarray
    initial: np.ndarray
    transition: np.ndarray


def make_chains(spec: TweetSpec) -> Chains:
    """Draws the authors' chains from `spec.world_seed`.

    With F >= 127 the alphabet is printable ASCII (codes 32..126), otherwise all F codes. Each
    author writes mostly from a palette of about a quarter of the alphabet, which makes authors
    identifiable from a few dozen characters but not from one.
    """
    rng = np.random.default_rng(np.random.SeedSequence([spec.world_seed, 0x7EE7]))
    alphabet = np.arange(32, 127) if spec.features >= 127 else np.arange(spec.features)
    v, k = alphabet.size, spec.n_authors
    palette_size = max(2, v // 4)
    background = rng.dirichlet(np.ones(v), size=v)  # (V, V)
    transition = np.empty((k, v, v))
    initial = np.empty((k, v))
    for author in range(k):
        palette = rng.choice(v, size=palette_size, replace=False)
        own = np.zeros((v, v))
        own[:, palette] = rng.dirichlet(np.full(palette_size, 0.5), size=v)
        transition[author] = (1 - spec.style) * background + spec.style * own
        initial[author] = (1 - spec.style) / v
        initial[author, palette] += spec.style / palette_size
    return Chains(alphabet=alphabet, initial=initial, transition=transition)


@dataclasses.dataclass(frozen=True)
class TweetSet:
    """Sampled tweet pairs.

    Attributes:
        codes_a, codes_b: (N, T) int16 character codes, PAD before the text.
        author_a, author_b: (N,) int authors.
    """

    codes_a: np.ndarray
    codes_b: np.ndarray
    author_a: np.ndarray
    author_b: np.ndarray

    def __len__(self):
        return self.author_a.shape[0]

    def labels(self, task: str, world) -> np.ndarray:
        """(N,) float32 0/1 labels of `task` in `world` (a TweetSpec or a corpus: anything with
        `group` and `long_threshold`)."""
        task = check_tasks([task])[0]
        if task in LENGTH_TASKS:
            return (self.lengths(LENGTH_TASKS[task]) > world.long_threshold).astype(np.float32)
        return TASKS[task](self.author_a, self.author_b, world.group).astype(np.float32)

    def lengths(self, field: str) -> np.ndarray:
        """(N,) number of characters of each text in `field` ("codes_a" or "codes_b")."""
        return (getattr(self, field) != PAD).sum(axis=1)

    def take(self, index) -> "TweetSet":
        return TweetSet(*(np.asarray(f)[index] for f in dataclasses.astuple(self)))


def _sample_text(chains: Chains, authors, lengths, seq_len, rng) -> np.ndarray:
    """(N, T) int16 codes, each row a chain of its length pre-padded with PAD."""
    n = authors.shape[0]
    cum_initial = np.cumsum(chains.initial, axis=-1)  # (K, V)
    cum_transition = np.cumsum(chains.transition, axis=-1)  # (K, V, V)
    symbols = np.empty((n, seq_len), dtype=np.int64)
    u = rng.random((n, seq_len))
    # Clip guards against u landing above a cumulative sum that rounds to just under 1.
    last = chains.alphabet.size - 1
    symbols[:, 0] = np.minimum((u[:, :1] > cum_initial[authors]).sum(-1), last)
    for t in range(1, seq_len):
        cum = cum_transition[authors, symbols[:, t - 1]]  # (N, V)
        symbols[:, t] = np.minimum((u[:, t:t + 1] > cum).sum(-1), last)
    codes = chains.alphabet[symbols].astype(np.int16)
    # Keep the first `length` characters of each chain and move them to the end.
    out = np.full((n, seq_len), PAD, dtype=np.int16)
    pos = np.arange(seq_len)
    keep = pos[None, :] >= (seq_len - lengths)[:, None]  # (N, T) text positions
    src = pos[None, :] - (seq_len - lengths)[:, None]
    out[keep] = codes[np.nonzero(keep)[0], src[keep]]
    return out


def generate(spec: TweetSpec, n: int, rng: np.random.Generator) -> TweetSet:
    """Draws `n` tweet pairs.

    Args:
        spec: the world.
        n: number of pairs, >= 1.
        rng: the only source of randomness for the samples.
    Returns:
        A TweetSet with codes of shape (n, spec.seq_len).
    """
    _check(int(n) == n and n >= 1, "a positive integer number of samples", n)
    chains = make_chains(spec)
    k = spec.n_authors
    author_a = rng.integers(k, size=n)
    same = rng.random(n) < spec.same_rate
    author_b = np.where(same, author_a, rng.integers(k, size=n))
    lengths = rng.integers(spec.min_len, spec.seq_len + 1, size=(2, n))
    codes_a = _sample_text(chains, author_a, lengths[0], spec.seq_len, rng)
    codes_b = _sample_text(chains, author_b, lengths[1], spec.seq_len, rng)
    return TweetSet(codes_a, codes_b, author_a, author_b)
