"""Cascading randomisation (Adebayo et al. 2018) on a small trained model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from probes import one_hot
from probes.checks.sanity import cascade_layers, sanity
from probes.cli import main


@pytest.fixture(scope="module")
def checked(tiny_runs):
    run = tiny_runs["concat"]
    model = run.model()
    pairs, _ = run.heldout(64)
    features = run.config.features
    xs = {"tweet_a": one_hot(pairs.codes_a, features), "tweet_b": one_hot(pairs.codes_b, features)}
    before = [w.copy() for w in model.get_weights()]
    res = sanity(model, xs, rng=np.random.default_rng(0),
                 methods=("saliency", "integrated_gradients", "input"))
    return model, before, res


def test_maps_fall_apart_as_the_layers_are_randomised(checked):
    model, before, res = checked
    assert res.layers == ("head_2", "head_1", "shared_lstm") == tuple(cascade_layers(model))
    for method in ("saliency", "integrated_gradients"):
        for name in res.inputs:
            # Step 1 re-initialises head_2 only: head_1's maps are those of the trained model.
            assert res.interval(method, 1, "head_1", name)[0] > 1 - 1e-9
            for head in res.heads:
                # After the last step nothing of the trained weights is left: no rank
                # agreement beyond chance, and the upper end of the interval below 0.5.
                mean, low, high = res.interval(method, 3, head, name)
                assert abs(mean) < 0.5 and high < 0.5, (method, head, name, mean, high)
                # The verdict judges |rho|, whose chance level over the 5 to 12 steps of these
                # tiny tweets is about 0.3 to 0.45: never "fails", and "passes" where the
                # interval clears 0.5 (at full size, 40 to 280 steps, chance is under 0.15).
                high_abs = res.interval(method, 3, head, name, absolute=True)[2]
                assert high_abs < 0.65, (method, head, name, high_abs)
                assert res.verdict(method, head, name) == (
                    "passes" if high_abs < 0.5 else "inconclusive")
    assert sum(res.verdict(m, h, i) == "passes" for m in ("saliency", "integrated_gradients")
               for h in res.heads for i in res.inputs) >= 4  # guard: the rule can pass
    # The control ignores the model: exactly 1 at every step, and it is reported failing.
    assert np.all(res.correlation[res.methods.index("input")] == 1.0)
    assert {res.verdict("input", h, i) for h in res.heads for i in res.inputs} == {"fails"}
    # The user's model was never touched.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_cli_reports_the_failing_control(tiny_runs):
    out = CliRunner().invoke(main, ["sanity", "--run", str(tiny_runs["separate"].path),
                                    "--samples", "32", "--methods", "saliency,input",
                                    "--json"])
    assert out.exit_code == 0, out.output
    blob = json.loads(out.stdout)
    assert blob["layers"] == ["head_2", "head_1", "shared_lstm"]
    assert blob["verdict"]["input"]["head_1"]["tweet_a"] == "fails"
    assert blob["verdict"]["saliency"]["head_1"]["tweet_b"] == "structural_zero"
    text = CliRunner().invoke(main, ["sanity", "--run", str(tiny_runs["separate"].path),
                                     "--samples", "32", "--methods", "saliency,input"])
    assert "FAILS: input" in text.stdout


def test_a_map_that_only_flips_its_sign_fails():
    # Three layers, one cell, 30 samples: rho after the last step near -0.9 (the ranking kept,
    # reversed), near 0 for a map that really changed, near +0.9 for one that did not.
    from probes.checks.sanity import Sanity

    rng = np.random.default_rng(0)
    last = np.stack([-0.9 + 0.02 * rng.standard_normal(30), 0.05 * rng.standard_normal(30),
                     0.9 + 0.02 * rng.standard_normal(30)])  # (M, N)
    correlation = np.ones((3, 3, 1, 1, 30))
    correlation[:, 2, 0, 0] = last
    res = Sanity(heads=("h",), inputs=("x",), methods=("flipped", "changed", "kept"),
                 layers=("a", "b", "c"), correlation=correlation,
                 structural=np.ones((1, 1), bool), sample_ids=np.arange(30),
                 params={"threshold": 0.5})
    assert res.interval("flipped", 3, "h", "x")[2] < -0.8  # signed: far below the threshold
    assert res.interval("flipped", 3, "h", "x", absolute=True)[1] > 0.8
    assert [res.verdict(m, "h", "x") for m in res.methods] == ["fails", "passes", "fails"]
