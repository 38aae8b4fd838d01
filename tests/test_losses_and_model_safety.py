"""One loss rule for every probe (probes.model.losses), and probes that never touch the user's
model."""

import inspect
import json
import threading

import keras
import numpy as np
import pytest
from keras import layers

from probes.engine.forward import compiled_forward, run_all
from probes.methods import ablation
from probes.methods.ablation import ablate
from probes.methods.attribution import attribute
from probes.methods.coupling import coupling
from probes.model.data import canonical_labels
from probes.model.graph import output_names
from probes.model.losses import (
    HeadLoss,
    head_losses,
    loss_kinds,
    mean_losses,
    sample_losses,
    tensor_mean_losses,
)
from probes.methods.paths import decompose, interaction
from probes.methods.taskgrads import agreement, loss_function
from probes.run.registry import PROBES

N, D = 24, 3


def _model(second: str = "softmax"):
    """a, b -> one shared tanh Dense (two call sites) -> concatenate -> head_1 (sigmoid) and
    head_2: "softmax" (3 units) or "linear" (1 unit whose outputs stay inside (0, 1), where
    the old ablation rule chose binary cross-entropy). Weights by hand, from a seeded rng."""
    a, b = keras.Input((D,), name="a"), keras.Input((D,), name="b")
    shared = layers.Dense(4, activation="tanh", name="shared")
    merged = layers.concatenate([shared(a), shared(b)], name="merged")
    h1 = layers.Dense(1, activation="sigmoid", name="head_1")
    units = 3 if second == "softmax" else 1
    h2 = layers.Dense(units, activation=None if second == "linear" else second, name="head_2")
    model = keras.Model([a, b], [h1(merged), h2(merged)])
    rng = np.random.default_rng(7)
    shared.set_weights([rng.normal(size=(D, 4)).astype("float32"),
                        rng.normal(size=4).astype("float32") * 0.1])
    h1.set_weights([rng.normal(size=(8, 1)).astype("float32"), np.array([0.2], "float32")])
    if second == "linear":  # |kernel| <= 0.05 on tanh units: outputs in [0.1, 0.9]
        h2.set_weights([rng.uniform(-0.05, 0.05, (8, 1)).astype("float32"),
                        np.array([0.5], "float32")])
    else:
        h2.set_weights([rng.normal(size=(8, units)).astype("float32"),
                        np.zeros(units, "float32")])
    return model


def _data(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = {k: rng.normal(size=(N, D)).astype("float32") for k in ("a", "b")}
    units = model.outputs[1].shape[-1]
    y2 = (np.eye(units)[rng.integers(0, units, N)] if units > 1 else rng.uniform(0, 1, N))
    return x, {"head_1": rng.integers(0, 2, N), "head_2": y2}


def _cases():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (N, 3))
    p[:4] = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1e-9, 1 - 1e-9, 0.5], [0.5, 0.5, 0.5]]
    soft = rng.dirichlet(np.ones(4), (N, 2))  # (N, 2, 4): two positions, four classes
    return {
        "bce": (HeadLoss("h", "bce"), p, rng.integers(0, 2, (N, 3)).astype(float)),
        "bce_soft_labels": (HeadLoss("h", "bce"), p, rng.uniform(0, 1, (N, 3))),
        "cce_one_hot": (HeadLoss("h", "categorical_crossentropy", 4), soft[:, 0],
                        np.eye(4)[rng.integers(0, 4, N)]),
        "cce_integer": (HeadLoss("h", "categorical_crossentropy", 4), soft[:, 0],
                        rng.integers(0, 4, (N, 1)).astype(float)),
        "cce_positions": (HeadLoss("h", "categorical_crossentropy", 4), soft,
                          rng.integers(0, 4, (N, 2)).astype(float)),
        "mse": (HeadLoss("h", "mse"), rng.normal(size=(N, 3)), rng.normal(size=(N, 3))),
    }


def _keras_loss(loss, o, y):
    """Per-sample loss by Keras' own functions, for reference."""
    o = o.astype("float32")
    if loss.kind == "bce":
        return np.asarray(keras.losses.binary_crossentropy(y.astype("float32"), o))
    if loss.kind == "mse":
        return np.asarray(keras.losses.mean_squared_error(y.astype("float32"), o))
    if y.shape[-1] != loss.classes:  # integer classes
        y = np.eye(loss.classes)[y.astype(int)].reshape(o.shape)
    per = np.asarray(keras.losses.categorical_crossentropy(y.astype("float32"), o))
    return per.reshape(N, -1).mean(axis=1)


@pytest.mark.parametrize("case", sorted(_cases()))
def test_numpy_tf_and_keras_losses_agree_for_every_kind(case):
    loss, o, y = _cases()[case]
    o = o.astype("float32").astype(np.float64)  # the outputs a float32 model gives
    per = sample_losses([o], [y], [loss])[0]  # (N,)
    tf_mean = np.asarray(tensor_mean_losses([o.astype("float32")], [y], [loss]))[0]
    # float32 (TF) against float64 (numpy) on the same float32 clip bounds: ~1e-7 relative.
    np.testing.assert_allclose(tf_mean, per.mean(), rtol=1e-6)
    np.testing.assert_allclose(mean_losses([o], [y], [loss]), [per.mean()], rtol=0, atol=0)
    # Keras' own float32 losses, per sample; atol for losses near 0 (clipped at 1 - 1e-7).
    np.testing.assert_allclose(per, _keras_loss(loss, o, y), rtol=1e-6, atol=1e-7)
    assert per.mean() > 0.05 and np.std(per) > 0  # guard: not a degenerate case


def test_loss_kind_follows_the_output_layer_not_the_labels():
    x = keras.Input((2, 3), name="x")
    flat = layers.Flatten()(x)
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, layers.Dense(1, activation="sigmoid")(inner_in), name="inner")
    model = keras.Model(x, {"p": layers.Dense(2, activation="sigmoid")(flat),
                            "c": layers.Dense(4, activation="softmax")(flat),
                            "s": layers.Dense(3, activation="softmax")(x),  # (N, 2, 3)
                            "a": layers.Activation("sigmoid")(layers.Dense(1)(flat)),
                            "n": inner(flat), "r": layers.Dense(1)(flat),
                            "m": layers.Softmax()(layers.Dense(5)(flat))})
    got = {loss.head: (loss.kind, loss.classes) for loss in head_losses(model)}
    assert got == {"p": ("bce", 1), "c": ("categorical_crossentropy", 4),
                   "s": ("categorical_crossentropy", 3), "a": ("bce", 1), "n": ("bce", 1),
                   "r": ("mse", 1), "m": ("categorical_crossentropy", 5)}
    assert loss_kinds(model) == tuple(got[h][0] for h in output_names(model))


def test_ablation_coupling_and_task_gradients_use_the_same_loss_for_each_head():
    model = _model("linear")
    x, y = _data(model)
    losses = head_losses(model)
    assert [loss.kind for loss in losses] == ["bce", "mse"]
    xs, ys = [x["a"], x["b"]], canonical_labels(model, y, N)
    outs = run_all(compiled_forward(model), xs, 256)  # the unablated outputs
    # Guard: head_2's outputs and labels lie in (0, 1), where the old ablation rule used
    # binary cross-entropy and the old coupling squared error.
    assert 0 < outs[1].min() and outs[1].max() < 1 and 0 <= ys[1].min() <= ys[1].max() <= 1
    through_ablation = ablation._losses(outs, ys, np.arange(N), losses).mean(axis=1)
    np.testing.assert_array_equal(through_ablation, mean_losses(outs, ys, losses))
    np.testing.assert_allclose(through_ablation[1], np.mean((outs[1] - ys[1]) ** 2), rtol=1e-12)
    # Coupling's loss before its steps: the same numbers (its forward pass is a stateless
    # call, the ablation's the graph run: same float32 ops, same rows per pass).
    np.testing.assert_array_equal(coupling(model, x, y).loss, through_ablation)
    # Task gradients' TF loss: the same formulas in float32 (~1e-7 relative).
    tf_loss = np.asarray(loss_function(model)(xs, [v.astype("float32") for v in ys]))
    np.testing.assert_allclose(tf_loss, through_ablation, rtol=1e-6)


def test_dict_inputs_and_outputs_get_their_heads_losses_by_key():
    # Keys in another order than the layers' names and the sorted keys: heads are matched by
    # key in `heads` order (sorted keys), inputs likewise.
    zeta, alpha = keras.Input((D,), name="zeta"), keras.Input((D,), name="alpha")
    shared = layers.Dense(2, name="shared")
    model = keras.Model({"zeta": zeta, "alpha": alpha},
                        {"y2": layers.Dense(1, activation="sigmoid", name="p")(shared(zeta)),
                         "y1": layers.Dense(1, name="r")(shared(alpha))})
    rng = np.random.default_rng(0)
    x = {k: rng.normal(size=(N, D)).astype("float32") for k in ("zeta", "alpha")}
    y = {"y1": rng.normal(size=N), "y2": rng.integers(0, 2, N)}
    assert output_names(model) == ("y1", "y2") and loss_kinds(model) == ("mse", "bce")
    xs, ys = [x["alpha"], x["zeta"]], canonical_labels(model, y, N)
    c = coupling(model, x, y)
    outs = run_all(compiled_forward(model), xs, 256)
    np.testing.assert_array_equal(c.loss, mean_losses(outs, ys, head_losses(model)))
    tf_loss = np.asarray(loss_function(model)(xs, [v.astype("float32") for v in ys]))
    np.testing.assert_allclose(tf_loss, c.loss, rtol=1e-6)  # float32 against float64
    assert np.all(c.loss > 0.1) and np.all(c.moved > 0)  # guard


def test_ablation_loss_effect_is_the_rule_s_loss_of_ablated_minus_original():
    model = _model("linear")
    x, y = _data(model)
    ys = canonical_labels(model, y, N)
    res = ablate(model, x, rng=np.random.default_rng(0), mode="zero", labels=y)
    fwd = compiled_forward(model)
    base = run_all(fwd, [x["a"], x["b"]], 256)
    zeroed = run_all(fwd, [np.zeros_like(x["a"]), x["b"]], 256)
    want = sample_losses(zeroed, ys, head_losses(model)) - sample_losses(base, ys,
                                                                         head_losses(model))
    # Packed passes against plain ones: float32 rounding of the outputs, ~1e-7 absolute.
    np.testing.assert_allclose(res.loss_effects[:, 0], want, rtol=0, atol=1e-6)
    bce = [HeadLoss("head_2", "bce")]
    as_bce = (sample_losses(zeroed[1:], ys[1:], bce) - sample_losses(base[1:], ys[1:], bce))[0]
    assert np.abs(as_bce - want[1]).max() > 1e-3  # guard: the kinds give different effects


def _snapshot(model) -> dict:
    """What a probe must leave as it was: config, weights bit for bit, attributes of the model
    and of every layer, the layers' call sites and activations."""
    return {"config": json.dumps(model.get_config(), sort_keys=True, default=str),
            "weights": [(w.dtype.str, w.shape, w.tobytes()) for w in model.get_weights()],
            "attributes": sorted(vars(model)),
            "layers": [(sorted(vars(layer)), len(layer._inbound_nodes),
                        getattr(layer, "activation", None)) for layer in model.layers]}


def _probes():
    """name -> probe(model, x, y) for every registered probe (labels where it takes them,
    few integrated-gradients steps), and the label probes of the library by the same names."""
    rng = np.random.default_rng
    out = {}
    for name, probe in PROBES.items():
        method = getattr(probe, "keywords", {}).get("method")
        kw = {"steps": 8} if method == "integrated_gradients" else {}
        labelled = "labels" in inspect.signature(probe).parameters
        out[name] = (lambda m, x, y, p=probe, kw=kw, labelled=labelled:
                     p(m, x, rng=rng(0), seed=0, **kw, **({"labels": y} if labelled else {})))
    out.setdefault("shared/coupling", lambda m, x, y: coupling(m, x, y))
    out.setdefault("shared/agreement",
                   lambda m, x, y: agreement(m, x, y, rng=rng(0), batch_size=8))
    out.setdefault("paths/decomposition", lambda m, x, y: decompose(m, x))
    out.setdefault("paths/interaction", lambda m, x, y: interaction(m, x, rng=rng(0)))
    return out


@pytest.mark.parametrize("name", sorted(_probes()))
def test_probes_leave_the_model_as_it_was(name):
    model = _model("softmax")
    x, y = _data(model)
    model.predict([x["a"], x["b"]], verbose=0)  # a model the user has already used
    before = _snapshot(model)
    _probes()[name](model, x, y)
    assert _snapshot(model) == before


def _numbers(result) -> list[np.ndarray]:
    if hasattr(result, "splits"):
        return [np.concatenate([s.contributions.ravel(), s.logit]) for s in result.splits]
    if hasattr(result, "moved_control"):
        return [result.moved, result.moved_control, result.loss_change, result.loss]
    return [result.effects]


def test_probes_in_two_threads_on_one_model_match_one_after_the_other():
    model = _model("softmax")
    x, y = _data(model)
    runs = {"coupling": lambda: coupling(model, x, y, learning_rate=0.5),
            "decompose": lambda: decompose(model, x),
            "attribute": lambda: attribute(model, x, rng=np.random.default_rng(0), steps=8,
                                           method="integrated_gradients")}
    alone = {k: _numbers(run()) for k, run in runs.items()}  # also traces every function
    barrier, got, errors = threading.Barrier(len(runs)), {}, []

    def worker(key):
        try:
            barrier.wait()
            got[key] = [_numbers(runs[key]()) for _ in range(4)]
        except Exception as err:  # noqa: BLE001 - re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key, repeats in got.items():
        for numbers in repeats:
            for a, b in zip(numbers, alone[key]):
                np.testing.assert_array_equal(a, b, err_msg=key)  # bit for bit
    assert np.abs(alone["coupling"][0]).max() > 1e-2  # guard: the steps do move the heads
