"""The untied variants (issue 17): the same models with one LSTM per tweet, to measure what the
shared LSTM buys. Structure, parameters and initial weights against the tied counterparts;
`probe shared` on a model whose heads share nothing; coupling exactly 0.0 across the heads of
`separate_untied`; and trained tiny runs whose ablation verdicts match the tied variants'."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mtl_models import runs
from mtl_models.variants import HEADS, TIED, VARIANTS, build_model
from probes.cli import main
from probes.methods.coupling import training_monitor
from probes.methods.taskgrads import shared_layers
from probes.model.graph import structure
from probes.run.registry import PROBES
from tests.conftest import TINY

SMALL = dict(seq_len=5, features=4, units=3, hidden=6)
UNTIED = tuple(TIED)
NO_SHARED = ("Expected a layer with weights shared by at least two heads; received a model "
             "whose heads ['head_1', 'head_2'] share no weights")


def _lstm_parameters(model) -> dict[str, int]:
    return {layer.name: layer.count_params() for layer in model.layers
            if type(layer).__name__ == "LSTM"}


def test_untied_variants_are_registered():
    assert set(UNTIED) == {"separate_untied", "concat_untied"}
    assert set(UNTIED) <= set(VARIANTS) and set(TIED.values()) <= set(VARIANTS)
    runs.TrainConfig(variant="separate_untied", **TINY)  # accepted, and cached apart:
    keys = {runs.run_dir_for(runs.TrainConfig(variant=v, **TINY), "c").name for v in VARIANTS}
    assert len(keys) == len(VARIANTS)


@pytest.mark.parametrize("untied", UNTIED)
def test_no_shared_layer_and_the_tied_reach(untied):
    model, tied = build_model(untied, **SMALL), build_model(TIED[untied], **SMALL)
    s, t = structure(model), structure(tied)
    assert s.shared == {} and t.shared == {"shared_lstm": 2}
    assert s.inputs == t.inputs and s.heads == t.heads == HEADS
    np.testing.assert_array_equal(s.reach, t.reach)
    # lstm_a reads tweet_a and lstm_b tweet_b: each head uses the encoder of each tweet it
    # sees, as the tied counterpart's head uses that tweet's call site of shared_lstm.
    sites = {"lstm_a": 0, "lstm_b": 1}
    for head in HEADS:
        mine = {sites[c.layer] for c in s.upstream[head] if c.layer in sites}
        theirs = {c.index for c in t.upstream[head] if c.layer == "shared_lstm"}
        assert mine == theirs


@pytest.mark.parametrize("sizes", [SMALL, {}], ids=["small", "full"])
@pytest.mark.parametrize("untied", UNTIED)
def test_encoder_parameters_exactly_twice(untied, sizes):
    model, tied = build_model(untied, **sizes), build_model(TIED[untied], **sizes)
    f, u = sizes.get("features", 256), sizes.get("units", 64)
    lstm = 4 * u * (f + u + 1)  # 4 gates: kernel (F, 4U), recurrent kernel (U, 4U), bias (4U,)
    assert _lstm_parameters(tied) == {"shared_lstm": lstm}
    assert _lstm_parameters(model) == {"lstm_a": lstm, "lstm_b": lstm}
    assert model.count_params() - tied.count_params() == lstm  # the heads are the same size


@pytest.mark.parametrize("untied", UNTIED)
def test_untied_starts_from_the_tied_weights(untied):
    model, tied = build_model(untied, seed=3, **SMALL), build_model(TIED[untied], seed=3, **SMALL)
    pairs = [("lstm_a", "shared_lstm"), ("head_1", "head_1"), ("head_2", "head_2")]
    for mine, theirs in pairs:
        for x, y in zip(model.get_layer(mine).get_weights(), tied.get_layer(theirs).get_weights()):
            np.testing.assert_array_equal(x, y)
    a, b = model.get_layer("lstm_a").get_weights(), model.get_layer("lstm_b").get_weights()
    assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])  # a fresh lstm_b


def _small_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.random((2, n, SMALL["seq_len"], SMALL["features"]), dtype=np.float32)
    return {"tweet_a": a, "tweet_b": b}, {h: rng.integers(0, 2, n) for h in HEADS}


def test_what_the_heads_share():
    # separate_untied: nothing. concat_untied: both heads read both encoders through the
    # concatenation, so its encoders are still shared by the tasks (not by the tweets).
    assert shared_layers(build_model("separate_untied", **SMALL)) == {}
    assert shared_layers(build_model("concat_untied", **SMALL)) == {"lstm_a": HEADS,
                                                                    "lstm_b": HEADS}
    inputs, labels = _small_data()
    with pytest.raises(ValueError) as err:
        PROBES["shared/agreement"](build_model("separate_untied", **SMALL), inputs,
                                   rng=np.random.default_rng(0), labels=labels)
    assert str(err.value) == NO_SHARED


def test_probe_shared_says_nothing_is_shared(tmp_path):
    build_model("separate_untied", **SMALL).save(tmp_path / "m.keras")
    inputs, labels = _small_data()
    np.savez(tmp_path / "d.npz", **inputs, **labels)
    args = ["shared", "--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "d.npz"),
            "--minibatch", "20"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("nothing is shared: no layer has weights used by two heads")
    assert "coupling: one gradient step" in result.stdout  # the evidence: exact zeros
    record = json.loads(CliRunner().invoke(main, args + ["--json"]).stdout)
    assert record["shared_layers"] == [] and record["agreement"] is None
    cross = ~np.eye(2, dtype=bool)
    assert np.all(np.array(record["coupling"]["moved"])[cross] == 0.0)


def test_probe_structure_shows_no_shared_layer():
    result = CliRunner().invoke(main, ["structure", "--variant", "separate_untied", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["shared_layers"] == {} and out["structural"] == [[True, False], [False, True]]
    assert out["call_sites"] == {"lstm_a": 1, "lstm_b": 1, "head_1": 1, "head_2": 1}
    text = CliRunner().invoke(main, ["structure", "--variant", "concat_untied"]).stdout
    assert "no shared layers" in text and "shared_lstm" not in text


@pytest.mark.parametrize("variant", ["separate", "separate_untied"])
def test_one_step_coupling_across_heads(variant):
    inputs, labels = _small_data()
    # lr 0.5: a step on random weights large enough that every move it can cause is > 1e-4.
    res = PROBES["shared/coupling"](build_model(variant, **SMALL), inputs,
                                    rng=np.random.default_rng(0), labels=labels,
                                    learning_rate=0.5)
    cross = ~np.eye(2, dtype=bool)
    # A step on one head's loss never writes the other head's weights: its outputs come from
    # the same compiled function with bit-identical weights, so exactly 0.0.
    assert np.all(res.moved_control[cross] == 0.0)
    assert np.all(np.diag(res.moved) > 1e-4) and np.all(np.diag(res.moved_control) > 1e-4)
    if variant == "separate_untied":  # nothing shared: the whole step is the head's own
        assert np.all(res.moved[cross] == 0.0)
        assert np.all(res.loss_change[cross] == 0.0) and np.all(res.predicted[cross] == 0.0)
    else:  # guard: tied, the step on the shared LSTM moves the other head
        assert np.all(res.moved[cross] > 1e-4)


@pytest.fixture(scope="module")
def untied_runs(tiny_cache):
    """Tiny runs of both untied variants, trained exactly like conftest's tied `tiny_runs`."""
    out = {}
    for variant in UNTIED:
        path, _ = runs.train_run(runs.TrainConfig(variant=variant, **TINY), cache=tiny_cache,
                                 monitor=training_monitor)
        out[variant] = runs.load_run(path)
    return out


def _ablate(run):
    result = CliRunner().invoke(main, ["ablate", "--run", str(run.path), "--samples", "200",
                                       "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("untied,verdicts", [
    ("concat_untied", [["depends", "depends"], ["depends", "depends"]]),
    ("separate_untied", [["depends", "structural_zero"], ["structural_zero", "depends"]]),
])
def test_ablation_verdicts_match_the_tied_variant(untied_runs, tiny_runs, untied, verdicts):
    mine, theirs = _ablate(untied_runs[untied]), _ablate(tiny_runs[TIED[untied]])
    assert mine["model"] == untied and theirs["model"] == TIED[untied]
    assert mine["verdict"] == theirs["verdict"] == verdicts
    assert mine["structural"] == theirs["structural"]
    if untied == "separate_untied":
        assert mine["effect"][0][1] == 0.0 and mine["effect"][1][0] == 0.0  # exact
    assert mine["effect"][0][0] > 0.01 and mine["effect"][1][1] > 0.01  # guard


@pytest.mark.slow
def test_trained_separate_untied_coupling_and_cli(untied_runs, tiny_runs):
    from probes.model.onehot import OneHot
    from mtl_models.tweets import INPUTS_OF_SET

    run = untied_runs["separate_untied"]
    tweets, labels = run.heldout(128)
    inputs = {name: OneHot(getattr(tweets, field), TINY["features"])
              for name, field in INPUTS_OF_SET.items()}
    cross = ~np.eye(2, dtype=bool)
    res = PROBES["shared/coupling"](run.model(), inputs, rng=np.random.default_rng(0),
                                    labels=labels)
    assert np.all(res.moved[cross] == 0.0) and np.all(res.moved_control[cross] == 0.0)
    assert np.all(np.diag(res.moved) > 1e-5)  # guard: the steps do move their own heads
    tied = PROBES["shared/coupling"](tiny_runs["separate"].model(), inputs,
                                     rng=np.random.default_rng(0), labels=labels)
    assert np.all(tied.moved[cross] > 1e-6)  # guard: the tied model is coupled, as measured
    # The training monitor found nothing shared to record; `probe shared` says so in a line.
    assert run.taskgrads()["groups"] == [] and run.taskgrads()["records"] == []
    result = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--samples", "128",
                                       "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["agreement"] is None and "nothing is shared" in result.stderr
    np.testing.assert_array_equal(np.array(record["coupling"]["moved"])[cross], 0.0)


@pytest.mark.slow
def test_probe_train_an_untied_variant(tmp_path):
    from tests.test_cli import TINY_ARGS

    result = CliRunner().invoke(main, ["train", "--variant", "concat_untied", "--cache-dir",
                                       str(tmp_path), "--json"] + TINY_ARGS)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["variant"] == "concat_untied" and out["trained"]
    run = runs.load_run(out["run"])
    assert run.path.name.startswith("concat_untied-") and run.config.variant == "concat_untied"
    assert _lstm_parameters(run.model()) == {"lstm_a": 336, "lstm_b": 336}  # 4*4*(16+4+1)
    # Both heads read both encoders: `probe shared` measures them, one group per encoder.
    result = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--minibatch", "50",
                                       "--json"])
    assert result.exit_code == 0, result.output
    shared = json.loads(result.stdout)
    assert shared["agreement"]["groups"] == ["lstm_a", "lstm_b", "(all shared)"]
    assert shared["training"]["groups"] == ["lstm_a", "lstm_b", "(all shared)"]
