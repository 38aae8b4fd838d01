import numpy as np
import pytest

from mtl_models import references as refs_of, tweets as tw
from probes import OneHot, one_hot

SPEC = tw.TweetSpec(seq_len=30, features=16, min_len=5)


def test_same_seed_same_tweets_other_seed_other_tweets():
    a = tw.generate(SPEC, 50, np.random.default_rng(7))
    b = tw.generate(SPEC, 50, np.random.default_rng(7))
    c = tw.generate(SPEC, 50, np.random.default_rng(8))
    for field in ("codes_a", "codes_b", "author_a", "author_b"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.codes_a, c.codes_a)


def test_tweets_are_pre_padded_with_lengths_in_range():
    t = tw.generate(SPEC, 200, np.random.default_rng(0))
    for codes in (t.codes_a, t.codes_b):
        text = codes != tw.PAD
        lengths = text.sum(1)
        assert lengths.min() >= SPEC.min_len and lengths.max() <= SPEC.seq_len
        # Padding first, then text to the end: once text starts it never stops.
        np.testing.assert_array_equal(np.diff(text.astype(int), axis=1).min(), 0)
        assert text[:, -1].all()
        assert codes[text].min() >= 0 and codes[text].max() < SPEC.features
        # Lengths vary (guards against a generator that always fills the sequence).
        assert len(np.unique(lengths)) > 10


def test_one_hot_rows_sum_to_one_on_text_and_zero_on_padding():
    assert tw.PAD == OneHot.empty_code  # the tweets pad with the code the probes' one-hot skips
    t = tw.generate(SPEC, 20, np.random.default_rng(0))
    x = one_hot(t.codes_a, SPEC.features)
    assert x.shape == (20, SPEC.seq_len, SPEC.features) and x.dtype == np.float32
    np.testing.assert_array_equal(x.sum(-1), (t.codes_a != tw.PAD).astype(np.float32))
    np.testing.assert_array_equal(x.argmax(-1)[t.codes_a != tw.PAD], t.codes_a[t.codes_a != tw.PAD])


@pytest.mark.parametrize("task,expected", [
    ("both_in_group", lambda a, b, g: g[a] & g[b]),
    ("either_in_group", lambda a, b, g: g[a] | g[b]),
    ("group_a", lambda a, b, g: g[a]),
    ("group_b", lambda a, b, g: g[b]),
    ("same_author", lambda a, b, g: a == b),
    ("xor", lambda a, b, g: g[a] != g[b]),
])
def test_labels_follow_the_task_definition(task, expected):
    t = tw.generate(SPEC, 300, np.random.default_rng(1))
    labels = t.labels(task, SPEC)
    np.testing.assert_array_equal(labels, expected(t.author_a, t.author_b, SPEC.group))
    assert 0 < labels.mean() < 1  # both classes present


def test_log_likelihood_matches_a_direct_product_of_chain_probabilities():
    spec = tw.TweetSpec(seq_len=6, features=8, n_authors=3, n_group=1, min_len=2)
    chains = tw.make_chains(spec)
    t = tw.generate(spec, 10, np.random.default_rng(3))
    ll = refs_of.author_log_likelihood(t.codes_a, chains)
    sym_of = {int(c): i for i, c in enumerate(chains.alphabet)}
    for n in range(10):
        text = [sym_of[int(c)] for c in t.codes_a[n] if c != tw.PAD]
        for k in range(3):
            p = chains.initial[k, text[0]] * np.prod(
                [chains.transition[k, x, y] for x, y in zip(text[:-1], text[1:])])
            # float64 sums of a handful of logs: agreement to ~1e-12 relative.
            np.testing.assert_allclose(ll[n, k], np.log(p), rtol=1e-10)


def test_references_when_authors_are_certain():
    # style=1 and long tweets make every author certain from its own tweet, so the references
    # reduce to closed forms computed here from the authors alone.
    spec = tw.TweetSpec(seq_len=60, features=32, min_len=60, style=1.0)
    t = tw.generate(spec, 2000, np.random.default_rng(2))
    g = spec.group
    ga, gb = g[t.author_a], g[t.author_b]
    refs = refs_of.reference_accuracy(t, "both_in_group", spec)
    y = ga & gb
    # P(b in group) = 0.6 > 0.5, so from tweet_a alone the Bayes rule predicts "a in group".
    np.testing.assert_allclose(refs["tweet_a"], np.mean(ga == y), rtol=0, atol=0)
    np.testing.assert_allclose(refs["tweet_b"], np.mean(gb == y), rtol=0, atol=0)
    np.testing.assert_allclose(refs["both"], 1.0, rtol=0, atol=0)
    # P(both in group) = 0.36 < 0.5: with nothing to read, the rule always predicts 0.
    np.testing.assert_allclose(refs["neither"], np.mean(~y), rtol=0, atol=0)
    # Guard: the references differ, so the test distinguishes them.
    assert refs["both"] - refs["tweet_a"] > 0.15


def test_same_author_has_no_single_tweet_information():
    spec = tw.TweetSpec(seq_len=40, features=32, same_rate=0.5)
    t = tw.generate(spec, 1000, np.random.default_rng(4))
    probs = refs_of.bayes_probability(t, "same_author", spec)
    # With uniform authors, one tweet says nothing about "same author": P = 0.5 + 0.5 / K.
    for source in ("neither", "tweet_a", "tweet_b"):
        np.testing.assert_allclose(probs[source], 0.5 + 0.5 / spec.n_authors, rtol=1e-12)
    assert np.mean((probs["both"] > 0.5) == t.labels("same_author", spec)) > 0.95


@pytest.mark.parametrize("kwargs", [dict(n_group=0), dict(n_group=5), dict(style=1.5),
                                    dict(same_rate=-0.1), dict(min_len=0), dict(seq_len=1)])
def test_bad_spec_is_refused(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        tw.TweetSpec(**kwargs)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="Expected a task in"):
        tw.check_tasks(["and"])


@pytest.mark.parametrize("task,field", [("long_a", "codes_a"), ("long_b", "codes_b")])
def test_length_tasks_read_one_tweet_exactly(task, field):
    t = tw.generate(SPEC, 400, np.random.default_rng(5))
    labels = t.labels(task, SPEC)
    # SPEC: lengths uniform in [5, 30], threshold 17.5: long means 18..30 characters.
    np.testing.assert_array_equal(labels, ((getattr(t, field) != tw.PAD).sum(1) >= 18))
    assert 0.3 < labels.mean() < 0.7  # both classes well represented
    refs = refs_of.reference_accuracy(t, task, SPEC)
    other = "tweet_b" if field == "codes_a" else "tweet_a"
    mine = "tweet_a" if field == "codes_a" else "tweet_b"
    # Reading the right tweet decides the label; the other tweet says nothing about it, so the
    # rule falls back to the prior P(long) = 13/26 = 0.5 exactly, and predicts "short".
    assert SPEC.long_prior() == 0.5
    assert refs[mine] == 1.0 and refs["both"] == 1.0
    short = float(np.mean(labels == 0))
    assert refs[other] == short and refs["neither"] == short
