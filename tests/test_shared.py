import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from mtl_models.variants import build_model
from probes.cli import main
from probes.coupling import coupling
from probes.taskgrads import agreement, shared_layers, task_gradients
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
    assert np.all(np.diag(c.moved_control) > 0)  # the control step does move its own head
    # Through the shared LSTM a step on one task moves the other head.
    assert c.moved[0, 1] > 0 and c.moved[1, 0] > 0
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


def test_training_record_and_cli(tiny_runs):
    run = tiny_runs["separate"]
    record = run.taskgrads()
    steps = [r["step"] for r in record["records"]]
    assert record["groups"] == ["shared_lstm"] and steps[0] == 0
    assert np.all(np.diff(steps) == record["every"]) and len(steps) > 20
    cos = np.array([r["cosine"][0][0][1] for r in record["records"]])
    assert np.all(np.abs(cos) <= 1 + 1e-9) and np.std(cos) > 0
    out = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--samples", "128",
                                    "--json", "--out", str(run.path.parent / "shared-out")])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    moved = np.array(res["coupling"]["moved_control"])
    assert moved[0, 1] == 0.0 and moved[1, 0] == 0.0
    assert res["coupling"]["moved"][0][1] > 0
    assert res["agreement"]["groups"] == ["shared_lstm"] and res["training"]["records"]
    text = CliRunner().invoke(main, ["shared", "--run", str(run.path), "--samples", "128"])
    assert text.exit_code == 0 and "conflict rate over training" in text.stdout


def test_model_without_labels_or_shared_weights_is_refused(tmp_path):
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
    assert out.exit_code == 1 and "share no weights" in out.output
