"""Reference accuracies: what the best possible predictor achieves from what it may read.

For an author task the Bayes-optimal predictor knows every author's character chain and the
prior over author pairs, and reads tweet_a, tweet_b, both or neither; for a length task it reads
the length of the tweet it may see. A "world" is anything with `chains()`, `pair_prior()`,
`long_prior()`, `group`, `n_authors`, `long_threshold` and `temperature`: the synthetic
TweetSpec, whose chains are the true ones (temperature 1), or a real corpus, whose chains are
estimated from its training texts and tempered (there the reference is the best model of that
family, not a bound).
"""

from __future__ import annotations

import numpy as np

from mtl_models.tweets import LENGTH_TASKS, PAD, TASKS, Chains, TweetSet, check_tasks

# Probabilities within this of 1/2 are ties (float64 sums of products round by ~1e-16).
TIE = 1e-12


def author_log_likelihood(codes: np.ndarray, chains: Chains) -> np.ndarray:
    """log P(text | author) for every author, shape (N, K)."""
    index = np.full(max(chains.alphabet.max() + 1, 1), -1)
    index[chains.alphabet] = np.arange(chains.alphabet.size)
    valid = codes != PAD  # (N, T)
    sym = np.where(valid, index[np.where(valid, codes, 0)], 0)  # (N, T)
    first = valid.argmax(axis=1)  # pre-padding: the first valid position
    with np.errstate(divide="ignore"):  # style=1 leaves impossible characters: log 0 = -inf
        log_init = np.log(chains.initial)  # (K, V)
        log_trans = np.log(chains.transition)  # (K, V, V)
    ll = log_init[:, sym[np.arange(len(sym)), first]].T  # (N, K)
    pair_valid = valid[:, 1:] & valid[:, :-1]  # (N, T-1) transitions inside the text
    for author in range(chains.initial.shape[0]):
        steps = log_trans[author][sym[:, :-1], sym[:, 1:]]  # (N, T-1)
        ll[:, author] += np.where(pair_valid, steps, 0.0).sum(axis=1)
    return ll


def bayes_probability(tweets: TweetSet, task: str, world) -> dict[str, np.ndarray]:
    """P(label = 1 | what each reference may read), per sample.

    Returns:
        {"neither" | "tweet_a" | "tweet_b" | "both": (N,) probabilities}.
    """
    task = check_tasks([task])[0]
    if task in LENGTH_TASKS:
        return _length_probability(tweets, task, world)
    chains = world.chains()
    truth = TASKS[task](*np.meshgrid(np.arange(world.n_authors), np.arange(world.n_authors),
                                     indexing="ij"), world.group)
    truth = truth.astype(float)  # (K, K) label of each author pair
    prior = world.pair_prior()  # (K, K)
    ll_a = author_log_likelihood(tweets.codes_a, chains)
    ll_b = author_log_likelihood(tweets.codes_b, chains)
    # Likelihoods scaled per sample (the scale cancels in every ratio below), tempered where
    # the chains are estimates (world.temperature is 1 for the true chains).
    t = world.temperature
    lik_a = np.exp((ll_a - ll_a.max(axis=1, keepdims=True)) / t)  # (N, K)
    lik_b = np.exp((ll_b - ll_b.max(axis=1, keepdims=True)) / t)
    ones = np.ones_like(lik_a)
    out = {}
    for name, la, lb in (("neither", ones, ones), ("tweet_a", lik_a, ones),
                         ("tweet_b", ones, lik_b), ("both", lik_a, lik_b)):
        joint = prior[None] * la[:, :, None] * lb[:, None, :]  # (N, K, K)
        out[name] = (joint * truth).sum(axis=(1, 2)) / joint.sum(axis=(1, 2))
    return out


def _length_probability(tweets: TweetSet, task: str, world) -> dict[str, np.ndarray]:
    # Reading the tweet decides the label; not reading it leaves the prior.
    known = tweets.labels(task, world).astype(float)
    prior = np.full(len(tweets), world.long_prior())
    reads = {"neither": (), "tweet_a": ("codes_a",), "tweet_b": ("codes_b",),
             "both": ("codes_a", "codes_b")}
    return {name: known if LENGTH_TASKS[task] in fields else prior
            for name, fields in reads.items()}


def reference_accuracy(tweets: TweetSet, task: str, world) -> dict[str, float]:
    """Accuracy of the Bayes-optimal rule on these samples, per reference source.

    The rule predicts 1 where P(label = 1 | source) > 0.5 (a tie predicts 0: TIE absorbs the
    rounding of probabilities that are exactly 1/2, e.g. two equally likely shows); it is
    scored on the same labels a
    model is scored on, so the two are directly comparable.
    """
    labels = tweets.labels(task, world)
    return {name: float(np.mean((p > 0.5 + TIE) == (labels > 0.5)))
            for name, p in bayes_probability(tweets, task, world).items()}
