import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from mtl_models.variants import build_model
from probes.cli import main
from probes.methods.coupling import coupling, training_monitor
from probes.methods.taskgrads import agreement, shared_layers, task_gradients
from tests import models as m

N = 48


def _two_scalar_heads(a1: float, a2: float):
    """z = w . x (shared, no bias); head_k = sigmoid(a_k z). dL_k/dw = mean (p_k - y_k) a_k x."""
    x = keras.Input((3,), name="x")
    shared = keras.layers.Dense(1, use_bias=False, name="shared")
    z = shared(x)
    h1 = keras.layers.Dense(1, use_bias=False, activation="sigmoid", name="head_1")
    h2 = keras.layers.Dense(1, use_bias=False, activation="sigmoid", name="head_2")
    model = keras.Model(x, [h1(z), h2(z)])
    w = np.array([[0.5], [-1.0], [0.25]], "float32")
    shared.set_weights([w])
    h1.set_weights([np.array([[a1]], "float32")])
    h2.set_weights([np.array([[a2]], "float32")])
    return model, w[:, 0]


def test_cosine_matches_the_hand_computed_gradients():
    model, w = _two_scalar_heads(1.5, -0.7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype("float32")
    y1, y2 = rng.integers(0, 2, N), rng.integers(0, 2, N)
    z = x @ w
    g1 = (((1 / (1 + np.exp(-1.5 * z))) - y1) * 1.5) @ x / N
    g2 = (((1 / (1 + np.exp(0.7 * z))) - y2) * -0.7) @ x / N
    want = g1 @ g2 / np.linalg.norm(g1) / np.linalg.norm(g2)
    r = agreement(model, {"x": x}, {"head_1": y1, "head_2": y2}, rng=np.random.default_rng(0),
                  batch_size=N)
    assert r.groups == ("shared",) and shared_layers(model) == {"shared": ("head_1", "head_2")}
    # float32 gradients of 48 samples: cosine to 1e-5; norms to 1e-5 relative.
    np.testing.assert_allclose(r.full_cosine[0, 0, 1], want, atol=1e-5)
    np.testing.assert_allclose(r.norms[0, 0], [np.linalg.norm(g1), np.linalg.norm(g2)],
                               rtol=1e-5)
    assert abs(want) > 0.1  # the check is not trivially about a zero cosine


def test_mirrored_heads_have_identical_gradients_and_no_conflict():
    # head_2 = 1 - head_1 with labels 1 - y: the two losses are equal, so the gradients are.
    model, _ = _two_scalar_heads(1.5, -1.5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = rng.integers(0, 2, N)
    r = agreement(model, {"x": x}, {"head_1": y, "head_2": 1 - y},
                  rng=np.random.default_rng(0), batch_size=16)
    np.testing.assert_allclose(r.cosine[:, 0, 0, 1], 1.0, atol=1e-5)
    assert r.conflict_rate()[0, 0, 1] == 0.0 and r.cosine.shape == (3, 1, 2, 2)


def _two_linear_heads(a1: float, a2: float):
    """z = w . x (shared, no bias); head_k = a_k z, linear, so its loss is squared error."""
    x = keras.Input((3,), name="x")
    shared = keras.layers.Dense(1, use_bias=False, name="shared")
    z = shared(x)
    h1 = keras.layers.Dense(1, use_bias=False, name="head_1")
    h2 = keras.layers.Dense(1, use_bias=False, name="head_2")
    model = keras.Model(x, [h1(z), h2(z)])
    w = np.array([[0.5], [-1.0], [0.25]], "float32")
    shared.set_weights([w])
    h1.set_weights([np.array([[a1]], "float32")])
    h2.set_weights([np.array([[a2]], "float32")])
    return model, w[:, 0].astype(np.float64)


def _linear_by_hand(x, y, w, a):
    """float64 hand math for head_k = a_k (x . w), L_k = mean (head_k - y_k)^2.

    Returns outputs (H, N), losses (H,), dL_k/dw (H, 3) and dL_k/da_k (H,).
    """
    x = np.asarray(x, np.float64)
    z = x @ w  # (N,)
    out = a[:, None] * z  # (H, N)
    res = out - y
    n = len(z)
    return out, (res ** 2).mean(axis=1), 2 * a[:, None] * (res @ x) / n, 2 * (res @ z) / n


def test_opposite_residuals_give_cosine_minus_one_in_every_mini_batch():
    # head_1 = head_2 = z = w . x with labels z - r and z + r: residuals +r and -r, so the
    # squared-error gradients on the shared kernel, 2 mean(+-r x), are exactly opposite.
    model, w = _two_linear_heads(1.0, 1.0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, 3)).astype("float32")
    z, r = x.astype(np.float64) @ w, rng.normal(size=N)
    a = agreement(model, {"x": x}, {"head_1": z - r, "head_2": z + r},
                  rng=np.random.default_rng(0), batch_size=16)
    # The float32 outputs differ from the float64 z by ~1e-7 against residuals of order 1:
    # the cosine is -1 to 1e-6, over all samples and in each of the 3 mini-batches of 16.
    np.testing.assert_allclose(a.full_cosine[0, 0, 1], -1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.cosine[:, 0, 0, 1], -1.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.conflict_rate()[0, 0, 1], 1.0)
    # Both residuals have the same size, so every mini-batch's two norms agree (float32).
    np.testing.assert_allclose(a.norms[:, 0, 0], a.norms[:, 0, 1], rtol=1e-5)
    assert a.cosine.shape == (3, 1, 2, 2)


def test_coupling_step_of_a_linear_model_matches_the_hand_computed_step():
    lr = 0.1  # large enough that the second-order term is far above float32 noise
    model, w = _two_linear_heads(1.5, -0.7)
    a = np.array([1.5, -0.7])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = rng.normal(size=(2, N))
    before = [v.copy() for v in model.get_weights()]
    c = coupling(model, {"x": x}, {"head_1": y[0], "head_2": y[1]}, learning_rate=lr)
    out, loss, gw, ga = _linear_by_hand(x, y, w, a)
    moved, control, change = np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))
    for j in range(2):
        a_step = a.copy()
        a_step[j] -= lr * ga[j]  # task j's step moves head j's own weight a_j ...
        after, loss_after, _, _ = _linear_by_hand(x, y, w - lr * gw[j], a_step)  # ... and w
        moved[j] = np.abs(after - out).mean(axis=1)
        change[j] = loss_after - loss
        control[j] = np.abs(_linear_by_hand(x, y, w, a_step)[0] - out).mean(axis=1)
    # Task k's gradient over (w, a_1, a_2): gw[k] on w and ga[k] on its own a_k only.
    flat = np.concatenate([gw, np.diag(ga)], axis=1)  # (H, 5)
    # float32 gradients and outputs of order 1 (relative error ~1e-7), changes of order 0.1
    # and above: 1e-5 relative; the control step's cross cells exactly 0.0 (atol=0).
    np.testing.assert_allclose(c.predicted, -lr * flat @ flat.T, rtol=1e-5, atol=0)
    np.testing.assert_allclose(c.moved, moved, rtol=1e-5, atol=0)
    np.testing.assert_allclose(c.loss_change, change, rtol=1e-5, atol=0)
    np.testing.assert_allclose(c.moved_control, control, rtol=1e-5, atol=0)
    np.testing.assert_array_equal(c.moved_control[[0, 1], [1, 0]], 0.0)
    # Head i != j is linear in the shared kernel, so the measured loss change misses the
    # first-order prediction -lr <g_i, g_j> by exactly the curvature lr^2 a_i^2 mean((x.g_j)^2).
    xf = x.astype(np.float64)
    for i, j in ((0, 1), (1, 0)):
        curvature = lr ** 2 * a[i] ** 2 * np.mean((xf @ gw[j]) ** 2)
        np.testing.assert_allclose(c.loss_change[j, i] - c.predicted[j, i], curvature,
                                   rtol=1e-4)  # a difference of two 1e-5-accurate numbers
        assert curvature > 0.05 * abs(c.predicted[j, i])  # guard: not a first-order tie
    assert np.all(np.abs(c.predicted) > 1e-3) and np.all(moved > 1e-3)  # guard: real steps
    for b, v in zip(before, model.get_weights()):
        np.testing.assert_array_equal(b, v)  # the model is left as it was


def test_training_monitor_records_every_kth_step_with_hand_computed_values():
    lr = 0.1
    model, w0 = _two_linear_heads(1.5, -0.7)
    a = np.array([1.5, -0.7])
    rng = np.random.default_rng(4)
    x = rng.normal(size=(N, 3)).astype("float32")
    # Each task wants its own kernel, so the two gradients point apart, by an angle that
    # changes as the shared kernel moves (cosine 0.04 at step 0, 0.61 at step 9).
    y = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -1.0]]) @ x.T + 0.3 * rng.normal(size=(2, N))
    monitor = training_monitor(model, [x], [y[0], y[1]], every=3, lookahead_lr=lr)
    shared = model.get_layer("shared")

    def kernel(step):  # a known shared kernel before each step, standing in for training
        return (w0 + 0.1 * step * np.array([1.0, 1.0, -1.0])).astype("float32")

    for step in range(10):  # what fit calls before each of 10 training steps
        shared.set_weights([kernel(step)[:, None]])
        monitor.on_train_batch_begin(step)
    record = monitor.record()
    # Steps 0..9, every 3rd recorded, the first before step 1: 0, 3, 6, 9 = ceil(10 / 3).
    assert [r["step"] for r in record["records"]] == [0, 3, 6, 9]
    assert record["groups"] == ["shared"] and record["every"] == 3
    assert record["probe_samples"] == N
    for r in record["records"]:
        w = kernel(r["step"]).astype(np.float64)
        _, loss, gw, _ = _linear_by_hand(x, y, w, a)
        norms = np.linalg.norm(gw, axis=1)
        # Lookahead affinity: a step on the shared kernel alone along task i, scored on j.
        after = np.stack([_linear_by_hand(x, y, w - lr * gw[i], a)[1] for i in range(2)])
        # float32 gradients and losses, relative error ~1e-7: 1e-5 is a wide margin.
        np.testing.assert_allclose(r["losses"], loss, rtol=1e-5)
        np.testing.assert_allclose(r["norms"][0], norms, rtol=1e-5)
        np.testing.assert_allclose(r["cosine"][0][0][1], gw[0] @ gw[1] / norms.prod(),
                                   rtol=0, atol=1e-5)
        np.testing.assert_allclose(r["affinity"], 1 - after / loss, rtol=0, atol=1e-5)
    cos = [r["cosine"][0][0][1] for r in record["records"]]
    assert np.ptp(cos) > 0.5 and np.max(np.abs(cos)) < 0.9  # guard: follows the kernel, not +-1
    np.testing.assert_array_equal(shared.get_weights()[0][:, 0], kernel(9))  # restored


def _moved_on_a_copy(model, x, y, lr):
    """(H, H) mean |change of head i| after theta - lr g_j, g_j the gradient of task j's mean
    binary cross-entropy (Keras' loss), applied to a clone of `model`."""
    import tensorflow as tf

    xs = [x[t.name] for t in model.inputs]
    with tf.GradientTape(persistent=True) as tape:
        outs = model(xs)
        losses = [tf.reduce_mean(keras.losses.binary_crossentropy(
            np.asarray(y[h], "float32")[:, None], o)) for h, o in zip(("head_1", "head_2"), outs)]
    grads = [tape.gradient(loss, model.trainable_weights) for loss in losses]
    moved = np.zeros((2, 2))
    for j, g in enumerate(grads):
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        for v, gv in zip(copy.trainable_weights, g):
            v.assign(v - lr * (gv if gv is not None else 0.0))
        moved[j] = [np.mean(np.abs(np.asarray(b) - np.asarray(a)))
                    for a, b in zip(outs, copy(xs))]
    return moved


@pytest.mark.parametrize("variant", ["separate", "concat"])
def test_coupling_control_step_moves_other_heads_by_exactly_zero(variant):
    model = build_model(variant, seq_len=6, features=5, units=3, seed=2)
    x = m.random_inputs(model, N)
    rng = np.random.default_rng(0)
    y = {"head_1": rng.integers(0, 2, N), "head_2": rng.integers(0, 2, N)}
    before = [w.copy() for w in model.get_weights()]
    c = coupling(model, x, y, learning_rate=1e-2)
    np.testing.assert_array_equal(c.moved_control[0, 1], 0.0)
    np.testing.assert_array_equal(c.moved_control[1, 0], 0.0)
    assert np.all(np.diag(c.moved_control) > 1e-4)  # guard: the control step moves its head
    # Through the shared LSTM a step on one task moves the other head, by what the same
    # step gives on a copy of the model with Keras' own loss and gradients. The changes
    # (1e-5..5e-4) are differences of float32 outputs near 0.5 (one ulp 6e-8), so each mean
    # may be off by ~1 ulp (atol 1e-7; ~1e-8 seen); the gradients agree to ~1e-6 (rtol).
    np.testing.assert_allclose(c.moved, _moved_on_a_copy(model, x, y, 1e-2), rtol=1e-4,
                               atol=1e-7)
    assert np.all(c.moved > 1e-6)  # guard: every change is 10x that atol or more
    # A small step: the measured loss change matches -lr <g_i, g_j> to first order (5%).
    np.testing.assert_allclose(c.loss_change, c.predicted, rtol=0.05, atol=1e-9)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # every weight restored


def test_task_gradients_over_all_samples_feed_the_coupling_step():
    model = build_model("concat", seq_len=6, features=5, units=3, seed=2)
    x = m.random_inputs(model, N)
    rng = np.random.default_rng(0)
    y = {"head_1": rng.integers(0, 2, N), "head_2": rng.integers(0, 2, N)}
    # 48 samples in mini-batches of 20: two batches for the statistics, and the 8 left
    # over still count toward the gradient over all samples.
    agree, grads = task_gradients(model, x, y, rng=np.random.default_rng(1), batch_size=20)
    assert agree.cosine.shape[0] == 2 and agree.params["samples_full"] == N
    own = coupling(model, x, y, learning_rate=1e-2)
    given = coupling(model, x, y, learning_rate=1e-2, gradients=grads)
    # Batch means weighted by their sizes equal the mean over all samples, up to float32
    # summation order inside the batches (~1e-7 relative).
    np.testing.assert_allclose(given.predicted, own.predicted, rtol=1e-5, atol=0)
    np.testing.assert_allclose(given.moved, own.moved, rtol=1e-4, atol=0)
    assert np.all(given.predicted != 0)  # guard: a real step, not zeros on both sides
    with pytest.raises(ValueError, match="Expected gradients for 2 heads"):
        coupling(model, x, y, gradients=grads[:1])


@pytest.mark.slow
def test_training_record_and_cli(tiny_runs):
    from probes.model.onehot import OneHot
    from mtl_models.tweets import INPUTS_OF_SET
    from tests.conftest import TINY

    run = tiny_runs["separate"]
    record = run.taskgrads()
    steps = [r["step"] for r in record["records"]]
    assert record["groups"] == ["shared_lstm"] and record["every"] == 8
    # 10 epochs (patience 10 never stops them early) of ceil(2000 / 128) = 16 batches: 160
    # training steps, a record before steps 0, 8, ..., 152: 160 / 8 = 20 records.
    epochs = len(run.history["history"]["loss"])
    per_epoch = -(-TINY["n_train"] // TINY["batch_size"])
    assert (epochs, per_epoch) == (10, 16)
    assert steps == list(range(0, epochs * per_epoch, 8)) and len(steps) == 20
    cos = np.array([r["cosine"][0] for r in record["records"]])  # (records, H, H)
    # Each head's gradient with itself: cosine 1 to float64 rounding; the pair symmetric.
    np.testing.assert_allclose(cos[:, [0, 1], [0, 1]], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(cos[:, 0, 1], cos[:, 1, 0])
    # The monitor measures the current weights: 8 steps apart, no two records agree.
    assert np.all(np.diff(cos[:, 0, 1]) != 0)
    out = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--samples", "128",
                                    "--json", "--out", str(run.path.parent / "shared-out")])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    moved = np.array(res["coupling"]["moved_control"])
    assert moved[0, 1] == 0.0 and moved[1, 0] == 0.0
    # The CLI reports the library's numbers for its 128 held-out pairs. It steps along the
    # gradient summed over mini-batches of 64, the library call over one pass of 128: the
    # same mean up to float32 summation order (bit-identical here), so 1e-5 relative for the
    # prediction; the moves (1e-4..5e-4) also get an output ulp near 1 (atol 1e-7).
    tweets, labels = run.heldout(128)  # the pairs `--samples 128` reads
    inputs = {name: OneHot(getattr(tweets, field), TINY["features"])
              for name, field in INPUTS_OF_SET.items()}
    direct = coupling(run.model(), inputs, labels, learning_rate=1e-2)
    np.testing.assert_allclose(res["coupling"]["predicted"], direct.predicted, rtol=1e-5, atol=0)
    np.testing.assert_allclose(res["coupling"]["moved"], direct.moved, rtol=1e-4, atol=1e-7)
    assert np.all(direct.moved > 1e-5)  # guard: a real step, 100x that atol
    assert res["agreement"]["groups"] == ["shared_lstm"]
    assert res["training"]["records"] == record["records"]
    text = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--samples", "128"])
    assert text.exit_code == 0 and "conflict rate over training" in text.stdout


def test_no_labels_is_refused_and_no_shared_weights_is_said(tmp_path):
    model = m.unused_input()
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **m.random_inputs(model, N))
    out = CliRunner().invoke(main, ["shared", "--model", str(tmp_path / "m.keras"), "--data",
                                    str(tmp_path / "d.npz")])
    assert out.exit_code == 1 and "Expected labels for every head" in out.output
    assert "Traceback" not in out.output
    np.savez(tmp_path / "d.npz", **m.random_inputs(model, N), head=np.ones(N))
    out = CliRunner().invoke(main, ["shared", "--model", str(tmp_path / "m.keras"), "--data",
                                    str(tmp_path / "d.npz")])
    # One head: nothing is shared, said in a line, with the coupling of the one task.
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("nothing is shared: no layer has weights used by two heads")
