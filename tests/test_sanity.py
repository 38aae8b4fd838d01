"""Cascading randomisation (Adebayo et al. 2018) on a small trained model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mtl_models.tweets import one_hot
from probes.cli import main
from probes.sanity import cascade_layers, sanity


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
                assert res.verdict(method, head, name) == "passes"
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
    assert blob["verdict"]["saliency"]["head_1"]["tweet_b"] == "no path"
    text = CliRunner().invoke(main, ["sanity", "--run", str(tiny_runs["separate"].path),
                                     "--samples", "32", "--methods", "saliency,input"])
    assert "FAILS: input" in text.stdout
