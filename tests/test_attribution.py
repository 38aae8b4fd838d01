import keras
import numpy as np
import pytest

from mtl_models.variants import build_model
from probes.methods.attribution import METHODS, attribute
from probes.results.stats import summarize
from tests import models as m

N = 30


def _linear_sigmoid_model():
    """head = sigmoid(w . flatten(x) + 0.3): its logit is linear in x."""
    x = keras.Input((m.T, m.F), name="x")
    dense = keras.layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model(x, dense(keras.layers.Flatten()(x)))
    w = np.linspace(-1, 1, m.T * m.F, dtype="float32")[:, None]
    dense.set_weights([w, np.array([0.3], "float32")])
    return model, w[:, 0]


def _attr(model, x, method, **kw):
    return attribute(model, x, rng=np.random.default_rng(0), method=method, seed=0, **kw)


def test_linear_head_gradient_is_the_weights_and_ig_is_w_times_x_minus_baseline():
    model, w = _linear_sigmoid_model()
    x = m.random_inputs(model, N)["x"]
    flat = x.reshape(N, -1)
    # float32 gradients of a linear map: exact up to float32 rounding of w (rtol 1e-6).
    sal = _attr(model, {"x": x}, "saliency")
    np.testing.assert_allclose(sal.effects[0, 0], np.full(N, np.abs(w).sum()), rtol=1e-6)
    ixg = _attr(model, {"x": x}, "input_x_gradient")
    np.testing.assert_allclose(ixg.effects[0, 0], np.abs(flat * w).sum(1), rtol=1e-6)
    base = np.full((m.T, m.F), 0.25, "float32")
    ig = _attr(model, {"x": x}, "integrated_gradients", baseline={"x": base}, steps=4)
    np.testing.assert_allclose(ig.signed[0, 0], ((flat - 0.25) * w).sum(1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ig.effects[0, 0], np.abs((flat - 0.25) * w).sum(1), rtol=1e-5)
    # Completeness in logit space holds to float32 precision even with 4 steps.
    assert ig.completeness_gap.max() < 1e-5 and ig.params["steps"] == 4


def test_probability_space_differs_and_the_model_is_untouched():
    model, _ = _linear_sigmoid_model()
    x = m.random_inputs(model, N)
    logit = _attr(model, x, "saliency")
    prob = _attr(model, x, "saliency", space="probability")
    # d sigmoid / d logit = p (1 - p) < 1/4: probability-space saliency is strictly smaller.
    assert np.all(prob.effects < 0.25 * logit.effects + 1e-9)
    assert logit.params["logit_heads"] == ["head"] and prob.params["logit_heads"] == []
    # Logit space reads a copy of the output layer: the model's own layer keeps its sigmoid,
    # and the model gets no attributes from the probe.
    assert model.get_layer("head").activation.__name__ == "sigmoid"
    assert not [k for k in vars(model) if "mtl_probe" in k]


@pytest.mark.parametrize("method", METHODS)
def test_separate_cross_cells_are_exactly_zero(method):
    model = build_model("separate", seq_len=6, features=5, units=3, seed=1)
    r = _attr(model, m.random_inputs(model, N), method)
    np.testing.assert_array_equal(r.effects[0, 1], 0.0)
    np.testing.assert_array_equal(r.effects[1, 0], 0.0)
    assert np.all(r.effects[0, 0] > 0) and np.all(r.effects[1, 1] > 0)


def test_three_by_three_verdicts_match_ablation():
    model = m.three_by_three()
    x = m.random_inputs(model, 60)
    r = _attr(model, x, "integrated_gradients")
    np.testing.assert_array_equal(summarize(r).verdict, m.KNOWN_3x3)


@pytest.mark.parametrize("baseline", ["zero", "mean", "shuffle"])
def test_automatic_steps_reach_the_completeness_tolerance(tiny_runs, baseline):
    from probes.cli.runsource import from_run

    src = from_run(tiny_runs["concat"], 40)
    r = _attr(src.model, src.inputs, "integrated_gradients", baseline=baseline)
    assert np.median(r.completeness_gap) < 0.01
    assert r.params["median_gap"] == np.median(r.completeness_gap)
    assert r.params["steps"] in (8, 16, 32, 64, 128, 256, 512)


def _quartic_model():
    """logit = sum(w * x^4): along the path from 0 the integrand is 4 w x^4 alpha^3, a cubic."""
    x = keras.Input((m.T, m.F), name="x")
    sq = keras.layers.Multiply()([x, x])
    quart = keras.layers.Multiply()([sq, sq])
    dense = keras.layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model(x, dense(keras.layers.Flatten()(quart)))
    dense.set_weights([np.linspace(0.1, 1, m.T * m.F, dtype="float32")[:, None],
                       np.zeros(1, "float32")])
    return model


@pytest.mark.parametrize("quadrature,gap", [("gauss_legendre", 0.0), ("riemann", 0.125),
                                            ("trapezoid", 1.0)])
def test_quadrature_errors_on_a_cubic_integrand(quadrature, gap):
    # Two nodes: Gauss-Legendre is exact for cubics; the midpoint rule gives
    # (0.25^3 + 0.75^3) / 2 = 0.21875 for the integral 0.25 (gap 0.125); the trapezoid (0 + 1) / 2
    # = 0.5 (gap 1.0). Every sample has the same relative gap because the integrand is
    # proportional to alpha^3 for every x.
    model = _quartic_model()
    x = m.random_inputs(model, N)
    r = _attr(model, x, "integrated_gradients", steps=2, quadrature=quadrature)
    # float32 sums of x^4 over 12 elements: relative error ~1e-6.
    np.testing.assert_allclose(r.completeness_gap[0], gap, atol=1e-5)
    assert r.params["quadrature"] == quadrature and r.params["steps"] == 2


def _linear_token_model(vocab=7, steps=5, dim=3):
    """Integer tokens -> Embedding -> Flatten -> Dense: linear in the embedding."""
    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    embed = keras.layers.Embedding(vocab, dim, name="embedding")
    dense = keras.layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model(tokens, dense(keras.layers.Flatten()(embed(tokens))))
    rng = np.random.default_rng(3)
    embed.set_weights([rng.normal(size=(vocab, dim)).astype("float32")])
    w = rng.normal(size=(steps * dim, 1)).astype("float32")
    dense.set_weights([w, np.array([0.2], "float32")])
    return model, embed.get_weights()[0], w[:, 0]


def test_token_inputs_are_attributed_in_embedding_space():
    model, table, w = _linear_token_model()
    tokens = np.random.default_rng(0).integers(0, 7, size=(N, 5)).astype("int32")
    r = _attr(model, {"tokens": tokens}, "integrated_gradients", steps=2)
    e = table[tokens].reshape(N, -1)  # (N, steps * dim) the embedded sample
    # Linear in the embedding: IG from the zero embedding is w * e exactly (float32 rounding).
    np.testing.assert_allclose(r.signed[0, 0], e @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.effects[0, 0], np.abs(e * w).sum(1), rtol=1e-5)
    sal = _attr(model, {"tokens": tokens}, "saliency")
    np.testing.assert_allclose(sal.effects[0, 0], np.abs(w).sum(), rtol=1e-6)
    assert r.params["embedded_inputs"] == {"tokens": "embedding"}
    assert "attributed at the output of Embedding 'embedding'" in r.params["notes"][0]


@pytest.mark.parametrize("method", METHODS)
def test_shared_embedding_token_model_matrix(method):
    model = m.token_model()
    r = _attr(model, m.random_inputs(model, N), method)
    # Separate heads after a shared Embedding + LSTM: cross cells exactly 0.0.
    np.testing.assert_array_equal(r.effects[0, 1], 0.0)
    np.testing.assert_array_equal(r.effects[1, 0], 0.0)
    assert np.all(r.effects[0, 0] > 0) and np.all(r.effects[1, 1] > 0)
    assert sorted(r.params["embedded_inputs"]) == ["tokens_a", "tokens_b"]


def test_token_input_outside_an_embedding_is_refused():
    tokens = keras.Input((4,), dtype="int32", name="tokens")
    cast = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32"), name="cast")(tokens)
    model = keras.Model(tokens, keras.layers.Dense(1, name="head")(cast))
    with pytest.raises(ValueError, match="Expected integer input 'tokens' to feed only "
                                         "Embedding layers .*received Lambda 'cast'"):
        _attr(model, {"tokens": np.zeros((N, 4), "int32")}, "saliency")


@pytest.mark.parametrize("baseline", ["zero", "mean", "shuffle"])
def test_lazy_one_hot_inputs_give_the_eager_numbers(tiny_runs, baseline):
    from probes.cli.runsource import from_run

    src = from_run(tiny_runs["separate"], 24)
    eager = {k: np.asarray(v) for k, v in src.inputs.items()}
    assert not isinstance(src.inputs["tweet_a"], np.ndarray)  # the lazy path is exercised
    lazy = _attr(src.model, src.inputs, "integrated_gradients", baseline=baseline, steps=4)
    full = _attr(src.model, eager, "integrated_gradients", baseline=baseline, steps=4)
    np.testing.assert_array_equal(lazy.effects, full.effects)
    np.testing.assert_array_equal(lazy.completeness_gap, full.completeness_gap)


def test_probe_attribute_on_a_token_model_file(tmp_path):
    import json

    from click.testing import CliRunner

    from probes.cli import main

    model = m.token_model()
    model.save(tmp_path / "tokens.keras")
    np.savez(tmp_path / "tokens.npz", **m.random_inputs(model, N))
    out = CliRunner().invoke(main, ["attribute", "--model", str(tmp_path / "tokens.keras"),
                                    "--data", str(tmp_path / "tokens.npz"), "--method",
                                    "integrated_gradients", "--no-compare", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert res["verdict"] == [["depends", "structural_zero"], ["structural_zero", "depends"]]
    assert res["effect"][0][1] == 0.0 and res["effect"][1][0] == 0.0
    assert res["params"]["embedded_inputs"] == {"tokens_a": "shared_embedding",
                                                "tokens_b": "shared_embedding"}
    assert "attributed at the output of Embedding 'shared_embedding'" in out.stderr
    assert res["completeness"]["median_gap"] < 0.01
