"""Dependency contracts, written as a user would for their own project: the question's answer
asserted on both trained variants through the public API, the same assertions failing on a
model whose heads are wired the other way, and `probe check` on contract files."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from probes import one_hot
from probes.cli import main
from probes.testing import (
    ProbeCache,
    assert_dependencies,
    assert_depends,
    assert_independent,
    assert_no_path,
)

# The answer to the question, as a contract.
CONCAT = {"head_1": {"tweet_a": "depends", "tweet_b": "depends"},
          "head_2": {"tweet_a": "depends", "tweet_b": "depends"}}
SEPARATE = {"head_1": {"tweet_a": "depends", "tweet_b": ["independent", "no_path"]},
            "head_2": {"tweet_a": ["independent", "no_path"], "tweet_b": "depends"}}


def _model_and_data(run, n=128):
    """The trained model and n held-out pairs as one-hot arrays, as a user has them."""
    tweets, labels = run.heldout(n)
    features = run.config.features
    data = {"tweet_a": one_hot(tweets.codes_a, features),
            "tweet_b": one_hot(tweets.codes_b, features)}
    return run.model(), data


def test_concat_heads_depend_on_both_tweets(tiny_runs):
    model, data = _model_and_data(tiny_runs["concat"])
    assert_dependencies(model, data, CONCAT, samples=128)


def test_separate_heads_see_one_tweet_each(tiny_runs):
    model, data = _model_and_data(tiny_runs["separate"])
    assert_dependencies(model, data, SEPARATE, samples=128)
    assert_no_path(model, "head_1", "tweet_b")
    assert_no_path(model, "head_2", "tweet_a")
    assert_independent(model, data, "head_1", "tweet_b", samples=128)


def _swapped(model):
    """`separate` with its heads' wiring swapped: head_1 reads tweet_b's encoding."""
    a, b = keras.Input(model.inputs[0].shape[1:], name="tweet_a"), \
        keras.Input(model.inputs[1].shape[1:], name="tweet_b")
    lstm = model.get_layer("shared_lstm")
    return keras.Model([a, b], [model.get_layer("head_1")(lstm(b)),
                                model.get_layer("head_2")(lstm(a))])


def test_the_same_contract_fails_on_swapped_wiring_and_names_the_cell(tiny_runs):
    model, data = _model_and_data(tiny_runs["separate"])
    with pytest.raises(AssertionError) as failed:
        assert_dependencies(_swapped(model), data, SEPARATE, samples=128)
    message = str(failed.value)
    assert "head_1 <- tweet_b: expected independent, measured depends (share 1.000" in message
    assert "head_1 <- tweet_b: expected no_path, measured the graph has a path" in message
    assert "head_1 <- tweet_a: expected depends, measured structural_zero" in message
    assert message.count("<-- FAILS") == 6  # every clause of the contract fails
    assert "expected" in message and "measured" in message  # the side-by-side table


def test_twelve_assertions_run_one_probe_pass(tiny_runs):
    model, data = _model_and_data(tiny_runs["separate"])
    cache = ProbeCache()
    for _ in range(2):
        assert_depends(model, data, "head_1", "tweet_a", cache=cache, samples=128)
        assert_depends(model, data, "head_2", "tweet_b", cache=cache, samples=128)
        assert_independent(model, data, "head_1", "tweet_b", cache=cache, samples=128)
        assert_independent(model, data, "head_2", "tweet_a", cache=cache, samples=128)
        assert_no_path(model, "head_1", "tweet_b")
        assert_dependencies(model, data, SEPARATE, cache=cache, samples=128)
    assert cache.runs == 1
    assert_depends(model, data, "head_1", "tweet_a", cache=cache, samples=128, seed=1)
    assert cache.runs == 2  # another seed is another probe pass


@pytest.mark.mtl_probe(model=lambda: _small_linear(0.2)[0], data=lambda: _small_linear(0.2)[1],
                       samples=200)
def test_the_plugin_fixture_shares_one_pass(probed, probe_cache):
    before = probe_cache.runs
    for _ in range(4):
        probed.assert_depends("head", "big")
        probed.assert_depends("head", "small")
        probed.assert_no_path("head", "unused")
    # This marker's model is built for this test alone: exactly one pass, and only if the
    # fixture goes through the session's cache (bypassing it would leave the count at 0).
    assert probe_cache.runs - before == 1


def _small_linear(weight_small: float, n: int = 200):
    """head = x_big . 1 + weight_small * x_small . 1; `unused` reaches nothing."""
    big, small, unused = (keras.Input((4,), name=k) for k in ("big", "small", "unused"))
    dense = keras.layers.Dense(1, name="head")
    model = keras.Model([big, small, unused],
                        dense(keras.layers.concatenate([big, small])))
    dense.set_weights([np.r_[np.ones(4), np.full(4, weight_small)][:, None].astype("float32"),
                       np.zeros(1, "float32")])
    rng = np.random.default_rng(3)
    data = {k: rng.normal(size=(n, 4)).astype("float32") for k in ("big", "small", "unused")}
    return model, data


def test_an_underpowered_independence_claim_fails_as_inconclusive():
    # True share of `small` about 0.035 (below the 0.05 threshold), but 20 samples cannot
    # show it: the assertion fails, and says how many samples would.
    model, data = _small_linear(0.035, n=20)
    with pytest.raises(AssertionError) as failed:
        assert_independent(model, data, "head", "small", samples=20)
    message = str(failed.value)
    assert "expected independent, measured inconclusive (share" in message
    assert "samples would show the share below 0.05 (now 20)" in message
    # The same claim on a head that cannot see the input passes: shown, not just not shown.
    assert_independent(model, data, "head", "unused", samples=20)


def _contract(tmp_path, run, heads: str, name="contract.toml") -> str:
    path = tmp_path / name
    path.write_text(f'[model]\nrun = "{run.path}"\n\n[settings]\nsamples = 128\n\n{heads}')
    return str(path)


SEPARATE_TOML = """[heads.head_1]
depends = ["tweet_a"]
independent = ["tweet_b"]
no_path = ["tweet_b"]

[heads.head_2]
depends = ["tweet_b"]
independent = ["tweet_a"]
no_path = ["tweet_a"]
"""
CONCAT_TOML = """[heads.head_1]
depends = ["tweet_a", "tweet_b"]

[heads.head_2]
depends = ["tweet_a", "tweet_b"]
"""


def _check(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_probe_check_passes_each_variants_contract(tiny_runs, tmp_path):
    for variant, heads in (("separate", SEPARATE_TOML), ("concat", CONCAT_TOML)):
        out = _check(_contract(tmp_path, tiny_runs[variant], heads, f"{variant}.toml"))
        assert out.exit_code == 0, out.output
        assert "FAIL" not in out.stdout and "clauses hold" in out.stdout


def test_probe_check_fails_a_false_clause_with_its_evidence(tiny_runs, tmp_path):
    path = _contract(tmp_path, tiny_runs["separate"], '[heads.head_1]\ndepends = ["tweet_b"]\n')
    out = _check(path)
    assert out.exit_code == 1, out.output
    assert "head_1  tweet_b  depends  structural_zero" in out.stdout
    assert "FAIL head_1 <- tweet_b: expected depends, measured structural_zero (share 0.000 " \
           "[0.000, 0.000])" in out.stdout
    record = json.loads(_check(path, "--json").stdout)
    assert record["holds"] is False and record["clauses"][0]["holds"] is False


@pytest.mark.parametrize("text,fragment", [
    ("[model\n", "Expected a TOML contract"),
    ('[model]\nvariant = "separate"\n', "Expected at least one [heads.<head>] table"),
    ('[model]\nvariant = "separate"\n[heads.head_1]\nleaks = ["tweet_b"]\n',
     "Expected clauses among ['depends', 'independent', 'no_path']"),
    ('[model]\npath = "m.keras"\n[heads.h]\ndepends = ["x"]\n', "Expected [model] data"),
])
def test_a_malformed_contract_is_one_line_and_exit_2(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = _check(path)
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in out.output


def test_a_structural_contract_reads_no_data(tmp_path):
    # Only no_path clauses: the graph decides, so the data file is never opened.
    model, _ = _small_linear(0.2)
    model.save(tmp_path / "m.keras")
    path = tmp_path / "structural.toml"
    path.write_text('[model]\npath = "m.keras"\ndata = "does-not-exist.npz"\n\n'
                    '[heads.head]\nno_path = ["unused"]\n')
    out = _check(path)
    assert out.exit_code == 0, out.output
    path.write_text('[model]\npath = "m.keras"\ndata = "does-not-exist.npz"\n\n'
                    '[heads.head]\nno_path = ["big"]\n')
    assert _check(path).exit_code == 1


def test_write_drafts_a_contract_that_then_holds(tiny_runs, tmp_path):
    path = tmp_path / "drafted.toml"
    out = CliRunner().invoke(main, ["check", str(path), "--write", "--run",
                                    str(tiny_runs["separate"].path)])
    assert out.exit_code == 0, out.output
    text = path.read_text()
    assert 'no_path = ["tweet_b"]' in text and 'depends = ["tweet_a"]' in text
    assert _check(path).exit_code == 0
    again = CliRunner().invoke(main, ["check", str(path), "--write", "--run",
                                      str(tiny_runs["separate"].path)])
    assert again.exit_code == 2 and "exists (--force replaces it)" in again.output


def test_a_family_without_verdict_cells_is_refused_in_one_line(tmp_path):
    """probes.testing judges ablation and attribution results only; the others are refused
    by name, with the list of what it accepts (not an AttributeError from deep inside)."""
    from probes import testing
    from probes.testing import contract as pcontract

    accepted = testing.judged_methods()
    assert "ablation/shuffle" in accepted and "attribution/saliency" in accepted
    assert not {"shared/agreement", "faithfulness", "structure"} & set(accepted)
    with pytest.raises(ValueError, match=r"^Expected a method with a verdict per head and "
                                         r"input, one of ablation/shuffle, .*; received "
                                         r"'shared/agreement'$"):
        testing.measure(None, None, method="shared/agreement")
    path = tmp_path / "c.toml"
    path.write_text('[model]\nvariant = "separate"\n[settings]\nmethod = "sanity"\n'
                    '[heads.head_1]\ndepends = ["tweet_a"]\n')
    with pytest.raises(ValueError, match="received 'sanity' \\(in \\[settings\\]"):
        pcontract.load(path)
