"""The probes under Keras' JAX and PyTorch backends give TensorFlow's numbers on the same file.

Keras fixes its backend when it is imported, so the other backend runs in a subprocess
(KERAS_BACKEND=jax or torch) on the .keras file and data this test saved, and its results are
compared here with TensorFlow's. The model has a float input, a token input through an
Embedding, a second float input, a Dense layer shared by both heads, and a head that sees
neither the tokens nor the second input: its cells must be exact structural zeros under every
backend. JAX is in the `test` extra (setup.cfg): without it the test fails, never skips.
PyTorch is optional (its wheel is large): its cases skip when it is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers
from numpy.testing import assert_allclose

import probes

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "smoothgrad")
N, T, F, STEPS, VOCAB = 6, 4, 3, 5, 7

# Run in the subprocess: the same calls as `_results` below, saved as .npz.
SCRIPT = """
import sys, numpy as np, keras, probes
model = keras.models.load_model(sys.argv[1])
data = dict(np.load(sys.argv[2]))
out = {"ablation": probes.ablate(model, data, seed=0, batch_size=4).effects}
for method in sys.argv[4].split(","):
    out[method] = probes.attribute(model, data, method=method, seed=0, batch_size=4).effects
np.savez(sys.argv[3], backend=keras.config.backend(), **out)
"""


def two_head_model():
    """series (T, F) and extra (2,) floats, tokens (STEPS,) ids; head h_series reads only series,
    through the Dense layer `shared` that h_all also reads."""
    series = keras.Input((T, F), name="series")
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    extra = keras.Input((2,), name="extra")
    embedded = layers.Flatten()(layers.Embedding(VOCAB, 3, name="embed")(tokens))
    shared = layers.Dense(4, activation="tanh", name="shared")
    from_series = shared(layers.Flatten()(series))
    from_tokens = shared(layers.Dense(T * F, name="project")(embedded))
    h_all = layers.Dense(1, activation="sigmoid", name="h_all")(
        layers.concatenate([from_series, from_tokens, extra]))
    h_series = layers.Dense(2, activation="softmax", name="h_series")(from_series)
    return keras.Model([series, tokens, extra], [h_all, h_series])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(model file, data file, TensorFlow's ablation and integrated gradients on them)."""
    directory = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(0)
    two_head_model().save(directory / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(directory / "data.npz", series=rng.normal(size=(N, T, F)).astype("float32"),
             tokens=rng.integers(0, VOCAB, size=(N, STEPS)).astype("int32"),
             extra=rng.normal(size=(N, 2)).astype("float32"))
    return (directory / "model.keras", directory / "data.npz",
            _results(directory / "model.keras", directory / "data.npz", METHODS[:1]))


def _results(model_file, data_file, methods) -> dict:
    """What SCRIPT computes, here under TensorFlow."""
    model = keras.models.load_model(model_file)
    data = dict(np.load(data_file))
    out = {"ablation": probes.ablate(model, data, seed=0, batch_size=4).effects}
    for method in methods:
        out[method] = probes.attribute(model, data, method=method, seed=0,
                                       batch_size=4).effects
    return out


def _environment(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _require(backend: str) -> None:
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.fail("Expected jax to be installed (setup.cfg's test extra: pip install "
                    "'.[test]'); the JAX backend's tests cannot run without it")
    if backend == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (optional: pip install '.[torch]')")


def _results_under(backend: str, saved, methods, directory) -> dict:
    """What SCRIPT computes under `backend`, in a subprocess."""
    _require(backend)
    model_file, data_file, _ = saved
    out = directory / "results.npz"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(model_file), str(data_file),
                           str(out), ",".join(methods)], env=_environment(backend), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = dict(np.load(out))
    assert str(results.pop("backend")) == backend
    return results


@pytest.fixture(scope="module", params=["jax", "torch"])
def theirs(request, saved, tmp_path_factory):
    """Ablation and integrated gradients under another backend (a subprocess)."""
    return _results_under(request.param, saved, METHODS[:1],
                          tmp_path_factory.mktemp(request.param))


def _assert_equal_to_float32_rounding(theirs, ours):
    # (H, I, N) mean |change| of each head's outputs. Outputs in [0, 1] computed by two
    # compilers: a few float32 roundings (eps 6e-8) apart (measured under JAX: 3e-7 at most).
    assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
    assert np.all(theirs[1, 1:] == 0.0)  # h_series sees neither tokens nor extra
    assert np.all(ours[0] > 1e-4) and np.all(ours[1, 0] > 1e-2)  # the other cells move


def _assert_equal_to_1e_4(theirs, ours):
    # (H, I, N) per-sample sums of |attribution|. The bar: 1e-4 relative (measured
    # under JAX: 5e-7 at most).
    assert_allclose(theirs, ours, rtol=1e-4, atol=0)
    # Structural zeros stay exact: JAX returns zero gradients where the graph has no path.
    assert np.all(theirs[1, 1:] == 0.0)
    assert np.all(ours[0] > 1e-4) and np.all(ours[1, 0] > 1e-3)


def test_ablation_equals_tensorflows_to_float32_rounding(saved, theirs):
    _assert_equal_to_float32_rounding(theirs["ablation"], saved[2]["ablation"])


def test_integrated_gradients_equal_tensorflows_to_1e_4(saved, theirs):
    _assert_equal_to_1e_4(theirs["integrated_gradients"], saved[2]["integrated_gradients"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_gradient_probes_equal_tensorflows_to_1e_4(saved, backend, tmp_path):
    others = _results_under(backend, saved, METHODS[1:], tmp_path)
    ours = _results(saved[0], saved[1], METHODS[1:])
    for method in METHODS[1:]:
        _assert_equal_to_1e_4(others[method], ours[method])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["ablate", "attribute"])
def test_cli_runs_under_jax(saved, command):
    _require("jax")
    model_file, data_file, _ = saved
    done = subprocess.run([sys.executable, "-c", "from probes.cli import main; main()", command,
                           "--model", str(model_file), "--data", str(data_file), "--json"],
                          env=_environment("jax"), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)


def test_several_devices_under_another_backend_are_refused_in_one_line(monkeypatch):
    from probes.engine import backends, devices

    monkeypatch.setattr(backends, "name", lambda: "jax")
    with pytest.raises(ValueError, match="Expected one device under the Keras backend 'jax'"):
        with devices.use(2):
            pass
