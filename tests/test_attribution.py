import keras
import numpy as np
import pytest

from mtl_models.variants import build_model
from probes.attribution import METHODS, attribute, logit_space
from probes.stats import summarize
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


def test_probability_space_differs_and_activation_is_restored():
    model, _ = _linear_sigmoid_model()
    x = m.random_inputs(model, N)
    logit = _attr(model, x, "saliency")
    prob = _attr(model, x, "saliency", space="probability")
    # d sigmoid / d logit = p (1 - p) < 1/4: probability-space saliency is strictly smaller.
    assert np.all(prob.effects < 0.25 * logit.effects + 1e-9)
    assert logit.params["logit_heads"] == ["head"] and prob.params["logit_heads"] == []
    assert model.get_layer("head").activation.__name__ == "sigmoid"
    with pytest.raises(RuntimeError):
        with logit_space(model):
            assert model.get_layer("head").activation.__name__ == "linear"
            raise RuntimeError
    assert model.get_layer("head").activation.__name__ == "sigmoid"


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
    from probes.sources import from_run

    src = from_run(tiny_runs["concat"], 40)
    r = _attr(src.model, src.inputs, "integrated_gradients", baseline=baseline)
    assert np.median(r.completeness_gap) < 0.01
    assert r.params["median_gap"] == np.median(r.completeness_gap)
    assert r.params["steps"] in (16, 32, 64, 128, 256, 512)


def test_integer_inputs_are_refused_with_a_pointer():
    model = m.token_model()
    with pytest.raises(ValueError, match="Expected float inputs for gradients; received "
                                         "integer input 'tokens_a'"):
        _attr(model, m.random_inputs(model, 5), "saliency")
