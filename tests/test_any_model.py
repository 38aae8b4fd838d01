"""Models the toolkit did not build, checked against hand-built references: masks held fixed
along the path, multi-unit heads by target, token inputs of any dtype, gradients that do not
exist or do not see, one sample, dict outputs named by key or layer, nested models per call
site."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from probes.engine.gradients import quadrature
from probes.methods.ablation import ablate
from probes.methods.attribution import METHODS, attribute
from probes.model.graph import resolve_head, structure, token_sites
from probes.results.stats import summarize

V, T, D = 9, 6, 3  # vocabulary, steps, embedding width


def _attr(model, x, method="integrated_gradients", **kw):
    return attribute(model, x, rng=np.random.default_rng(0), method=method, seed=0, **kw)


def _reference_ig(call, end, start=0.0, steps=16):
    """IG by hand: Gauss-Legendre nodes, gradients with one tape per node; `call` maps a
    (N, T, D) point to the (N,) head score."""
    alphas, weights = quadrature("gauss_legendre", steps)
    total = np.zeros_like(end)
    for a, w in zip(alphas, weights):
        p = tf.constant((start + a * (end - start)).astype("float32"))
        with tf.GradientTape() as tape:
            tape.watch(p)
            score = tf.reduce_sum(call(p))
        total += w * tape.gradient(score, p).numpy()
    return (end - start) * total  # (N, T, D)


def _masked_token_model(dtype="int32"):
    tokens = keras.Input((T,), dtype=dtype, name="tokens")
    emb = keras.layers.Embedding(V, D, mask_zero=True, name="emb")
    lstm = keras.layers.LSTM(2, name="lstm")
    dense = keras.layers.Dense(1, name="head")
    model = keras.Model(tokens, dense(lstm(emb(tokens))))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model, emb, lstm, dense


def _padded_tokens(n=5):
    x = np.random.default_rng(2).integers(1, V, size=(n, T))
    x[:, :2] = 0  # pre-padding
    x[1, :4] = 0
    return x


def test_mask_zero_ig_equals_a_reference_with_the_mask_held_fixed():
    model, emb, lstm, dense = _masked_token_model()
    x = _padded_tokens()
    r = _attr(model, {"tokens": x}, steps=16)
    e = emb(x).numpy()
    mask = tf.constant(x != 0)
    ref = _reference_ig(lambda p: dense(lstm(p, mask=mask))[:, 0], e)
    # Same nodes, same float32 graph ops, summed in another order: 1e-5 relative.
    np.testing.assert_allclose(r.signed[0, 0], ref.sum(axis=(1, 2)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r.effects[0, 0], np.abs(ref).sum(axis=(1, 2)), rtol=1e-5)
    # Padded steps are masked: exactly no attribution there, and some everywhere else.
    np.testing.assert_array_equal(r.profile[0, 0][x == 0], 0.0)
    assert np.all(r.profile[0, 0][x != 0] > 0)
    assert r.completeness_gap.max() < 1e-4  # the path's endpoints share the sample's mask
    assert "held fixed" in r.params["notes"][0]


def test_masking_layer_ig_equals_a_reference_with_the_mask_held_fixed():
    x_in = keras.Input((T, 2), name="x")
    lstm, dense = keras.layers.LSTM(2), keras.layers.Dense(1)
    model = keras.Model(x_in, dense(lstm(keras.layers.Masking(0.0)(x_in))))
    x = np.random.default_rng(3).normal(size=(4, T, 2)).astype("float32")
    x[:, :2] = 0.0
    # A baseline with no zero rows: the path's points are nowhere zero, so a mask computed
    # from them would unmask the padded steps; the sample's mask must be used all along.
    base = np.full((T, 2), 0.3, "float32")
    r = _attr(model, {"x": x}, steps=16, baseline={"x": base})
    mask = tf.constant(np.any(x != 0, axis=-1))
    ref = _reference_ig(lambda p: dense(lstm(p, mask=mask))[:, 0], x, base)
    np.testing.assert_allclose(r.signed[0, 0], ref.sum(axis=(1, 2)), rtol=1e-5, atol=1e-7)
    # Padded steps: the masked LSTM skips them, so no gradient reaches them.
    np.testing.assert_array_equal(r.profile[0, 0][:, :2], 0.0)
    assert np.all(r.profile[0, 0][:, 2:] > 0)
    assert r.completeness_gap.max() < 1e-4


def test_float_token_input_gives_the_int32_numbers():
    as_int, *_ = _masked_token_model("int32")
    as_float, *_ = _masked_token_model("float32")
    assert token_sites(as_float) == {0: [(as_float.get_layer("emb"), 0)]}
    x = _padded_tokens()
    for method in METHODS:
        a = _attr(as_int, {"tokens": x}, method)
        b = _attr(as_float, {"tokens": x.astype("float32")}, method)
        np.testing.assert_array_equal(a.effects, b.effects)
        assert np.all(a.effects[0, 0] > 0)


def _softmax_model():
    x = keras.Input((4,), name="x")
    dense = keras.layers.Dense(3, activation="softmax", name="probs")
    model = keras.Model(x, dense(x))
    rng = np.random.default_rng(4)
    w = rng.normal(size=(4, 3)).astype("float32")
    b = rng.normal(size=3).astype("float32")
    dense.set_weights([w, b])
    return model, w.astype(np.float64), b.astype(np.float64)


def test_softmax_probability_attribution_is_the_chosen_units_gradient():
    model, w, b = _softmax_model()
    x = np.random.default_rng(5).normal(size=(8, 4)).astype("float32")
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    unit = p.argmax(1)
    # d p_u / d x = p_u (w[:, u] - sum_k p_k w[:, k]) for logits z = x w + b.
    grad = p[np.arange(8), unit][:, None] * (w[:, unit].T - p @ w.T)
    r = _attr(model, {"x": x}, "saliency", space="probability")
    # float32 forward and gradient: 1e-5 relative.
    np.testing.assert_allclose(r.effects[0, 0], np.abs(grad).sum(1), rtol=1e-5)
    assert r.effects.min() > 1e-3  # a real gradient, not the float noise of a sum to 1
    fixed = _attr(model, {"x": x}, "saliency", space="probability", target=2)
    grad2 = p[:, 2:3] * (w[:, 2][None] - p @ w.T)
    np.testing.assert_allclose(fixed.effects[0, 0], np.abs(grad2).sum(1), rtol=1e-5)
    every = _attr(model, {"x": x}, "saliency", space="logit", target="all")
    assert every.heads == ("probs[0]", "probs[1]", "probs[2]")
    np.testing.assert_allclose(every.effects[:, 0], np.abs(w).sum(0)[:, None].repeat(8, 1),
                               rtol=1e-6)  # logits are linear: the gradient is a kernel column
    with pytest.raises(ValueError, match="Expected a target unit below 3, the units of head "
                                         "'probs'; received 3"):
        _attr(model, {"x": x}, "saliency", target=3)


def test_a_gradient_that_dies_is_an_error_naming_the_layer():
    x = keras.Input((5,), name="x")
    picked = keras.ops.cast(keras.ops.argmax(x, axis=-1), "float32")
    head = keras.layers.Dense(1, name="head")(keras.ops.expand_dims(picked, -1))
    model = keras.Model(x, head)
    data = {"x": np.random.default_rng(6).normal(size=(4, 5)).astype("float32")}
    with pytest.raises(ValueError, match="Expected a gradient of head 'head' with respect to "
                                         "input 'x'.*dies at layer 'argmax'.*probe ablate"):
        _attr(model, data, "saliency")
    # Ablation still measures it.
    r = ablate(model, data, rng=np.random.default_rng(0), mode="shuffle")
    assert np.any(r.effects > 0)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_saturated_units_are_unreliable_not_zero(method):
    x = keras.Input((3,), name="x")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden")
    model = keras.Model(x, keras.layers.Dense(1, name="head")(hidden(x)))
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(size=w.shape).astype("float32") + 0.5
                       for w in model.get_weights()])
    data = {"x": (rng.normal(size=(25, 3)) * 1e38).astype("float32")}
    r = _attr(model, data, method, steps=8)
    np.testing.assert_array_equal(r.effects, 0.0)  # tanh' is exactly 0 out there
    assert summarize(r).verdict.tolist() == [["unreliable"]]
    assert "saturated" in r.params["unreliable"][0]["reason"]
    if method == "integrated_gradients":
        np.testing.assert_allclose(r.completeness_gap, 1.0, rtol=1e-6)  # nothing attributed


def test_one_sample_is_attributed_and_too_few_to_test():
    model, w, _ = _softmax_model()
    x = np.random.default_rng(8).normal(size=(1, 4)).astype("float32")
    r = _attr(model, {"x": x}, "integrated_gradients")
    assert r.effects.shape == (1, 1, 1) and r.effects[0, 0, 0] > 0
    assert summarize(r).verdict.tolist() == [["too_few_samples"]]


def _dict_model():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    first = keras.layers.Dense(1, name="first_layer")(a)
    both = keras.layers.Dense(2, name="both_layer")(keras.layers.concatenate([a, b]))
    return keras.Model([a, b], {"z_first": first, "both": both})


def test_dict_outputs_are_heads_named_by_key_and_by_layer():
    model = _dict_model()
    s = structure(model)
    assert s.heads == ("both", "z_first")  # Keras' flattening order, named by key
    np.testing.assert_array_equal(s.reach, [[True, True], [True, False]])
    assert resolve_head(model, "first_layer") == "z_first"
    assert resolve_head(model, "z_first") == "z_first"
    with pytest.raises(ValueError, match="Expected a head of the model \\(both, z_first\\); "
                                         "received 'nope'"):
        resolve_head(model, "nope")
    rng = np.random.default_rng(9)
    data = {k: rng.normal(size=(30, 3)).astype("float32") for k in "ab"}
    labels = {"first_layer": rng.normal(size=30), "both": rng.normal(size=(30, 2))}
    r = ablate(model, data, rng=np.random.default_rng(0), mode="zero", labels=labels)
    assert r.heads == ("both", "z_first") and r.loss_effects is not None
    np.testing.assert_array_equal(r.effects[1, 1], 0.0)
    assert summarize(r).verdict[1, 1] == "structural_zero"


def test_a_nested_model_is_followed_per_output():
    p, q = keras.Input((2,), name="p"), keras.Input((2,), name="q")
    inner = keras.Model([p, q], [keras.layers.Dense(1)(p), keras.layers.Dense(1)(q)],
                        name="inner")
    a, b = keras.Input((2,), name="a"), keras.Input((2,), name="b")
    only_a, only_b = inner([a, b])
    model = keras.Model([a, b], [keras.layers.Dense(1, name="h_a")(only_a),
                                 keras.layers.Dense(1, name="h_b")(only_b)])
    np.testing.assert_array_equal(structure(model).reach, [[True, False], [False, True]])
    data = {k: np.random.default_rng(10).normal(size=(25, 2)).astype("float32") for k in "ab"}
    r = _attr(model, data, "saliency")
    assert summarize(r).verdict.tolist() == [["depends", "structural_zero"],
                                             ["structural_zero", "depends"]]


def test_probes_leave_the_model_as_they_found_it():
    model, w, b = _softmax_model()
    before = [v.copy() for v in model.get_weights()]
    attrs = dict(vars(model))
    x = np.random.default_rng(11).normal(size=(4, 4)).astype("float32")
    for method in METHODS:
        _attr(model, {"x": x}, method)
    assert model.get_layer("probs").activation.__name__ == "softmax"
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert set(vars(model)) == set(attrs)


def test_occlusion_of_inputs_of_different_lengths_shares_one_window_grid():
    long_in, short_in = keras.Input((6, 2), name="long"), keras.Input((4, 2), name="short")
    flat = keras.layers.concatenate([keras.layers.Flatten()(long_in),
                                     keras.layers.Flatten()(short_in)])
    model = keras.Model([long_in, short_in], keras.layers.Dense(1, name="head")(flat))
    rng = np.random.default_rng(12)
    data = {"long": rng.normal(size=(20, 6, 2)).astype("float32"),
            "short": rng.normal(size=(20, 4, 2)).astype("float32")}
    r = ablate(model, data, rng=np.random.default_rng(0), mode="occlusion", window=2)
    np.testing.assert_array_equal(r.profile_starts, [0, 2, 4])
    assert r.profile.shape == (1, 2, 20, 3)
    np.testing.assert_array_equal(r.profile[0, 1, :, 2], 0.0)  # past the short input's end
    assert np.all(r.profile[0, 0] > 0) and np.all(r.profile[0, 1, :, :2] > 0)
    # The effect is the sum over windows, whatever their count.
    np.testing.assert_allclose(r.effects[0], r.profile[0].sum(axis=2), rtol=1e-12)


def test_the_shuffle_baseline_moves_every_step():
    x_in = keras.Input((5, 2), name="x")
    model = keras.Model(x_in, keras.layers.Dense(1)(keras.layers.Flatten()(x_in)))
    model.set_weights([np.ones((10, 1), "float32"), np.zeros(1, "float32")])
    x = np.random.default_rng(13).normal(size=(20, 5, 2)).astype("float32")
    for seed in range(10):  # a permutation that kept a step would give it exactly 0
        r = attribute(model, {"x": x}, rng=np.random.default_rng(seed),
                      method="integrated_gradients", baseline="shuffle", steps=2)
        assert np.all(r.profile[0, 0] > 0)


def test_a_softmax_head_takes_integer_classes_as_labels():
    model, _, _ = _softmax_model()
    x = np.random.default_rng(14).normal(size=(25, 4)).astype("float32")
    classes = np.random.default_rng(15).integers(0, 3, 25)
    by_class = ablate(model, {"x": x}, rng=np.random.default_rng(0), mode="zero",
                      labels={"probs": classes})
    one_hot = ablate(model, {"x": x}, rng=np.random.default_rng(0), mode="zero",
                     labels={"probs": np.eye(3)[classes]})
    np.testing.assert_array_equal(by_class.loss_effects, one_hot.loss_effects)
    assert np.any(by_class.loss_effects != 0)
    with pytest.raises(ValueError, match="Expected integer classes in \\[0, 3\\)"):
        ablate(model, {"x": x}, rng=np.random.default_rng(0), mode="zero",
               labels={"probs": classes + 1})
