"""Users' model and data files: every bad one ends in one line naming the problem and a
non-zero exit, never a traceback; odd but valid ones (one input, one head, code opted in) give
results.

Options, output directories, interrupts, big inputs, determinism: test_robustness_output.py.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from probes.cli import main
from probes.results.result import load
from tests import models as m

N = 30  # rows of the data files: above the 20 the statistics need

CUSTOM_LAYERS = '''
import keras


class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


class TinySub(keras.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.dense = keras.layers.Dense(1, name="head")

    def call(self, x):
        return self.dense(x)
'''


def cli(args, code=0):
    """Runs `probe ARGS`; checks the exit code and that no exception escaped the CLI."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    # CliRunner swallows tracebacks: an escaped exception shows up here instead.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert "Traceback" not in result.output
    return result


def error(args, *fragments, code=1):
    """The one error line of a failing command, checked to contain every fragment."""
    result = cli(args, code)
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 3-input, 3-head model, its data, and the custom-layer module, in one folder."""
    d = m.save_three_by_three(tmp_path_factory.mktemp("files"), N)
    (d / "robust_layers.py").write_text(CUSTOM_LAYERS)
    return d


def _ablate(model, data, *extra):
    return ["ablate", "--model", model, "--data", data, "--mode", "zero", *extra]


def _save(tmp_path, model, n=N, name="m"):
    model.save(tmp_path / f"{name}.keras")
    np.savez(tmp_path / f"{name}.npz", **m.random_inputs(model, n))
    return tmp_path / f"{name}.keras", tmp_path / f"{name}.npz"


def _custom_module(files, name="robust_layers_build"):
    spec = importlib.util.spec_from_file_location(name, files / "robust_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Model files -----------------------------------------------------------------------------

@pytest.mark.parametrize("content,fragments", [
    (None, ["which does not exist"]),
    (b"just some text\n", ["(a zip archive)", "which is not one"]),
    (bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)),
     ["(a zip archive)", "which is not one"]),
    ("truncated", ["(a zip archive)", "or truncated"]),
    ("not-keras-zip", ["Expected a loadable Keras model", "received"]),
])
def test_model_files_that_are_not_keras_models(files, tmp_path, content, fragments):
    path = tmp_path / "bad.keras"
    if content == "truncated":
        data = (files / "model.keras").read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif content == "not-keras-zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("config.json", "{not json")
    elif content is not None:
        path.write_bytes(content)
    error(_ablate(path, files / "data.npz"), f"{str(path)!r}", *fragments)


def test_subclassed_model_needs_its_class_and_data_it_takes(files, tmp_path):
    sub = _custom_module(files).TinySub()
    sub(np.zeros((1, 3), "float32"))
    sub.save(tmp_path / "sub.keras")
    args = _ablate(tmp_path / "sub.keras", files / "data.npz")
    error(args, "custom class 'TinySub'", "--custom-module")
    module = ["--custom-module", files / "robust_layers.py"]
    # three inputs for a model that takes one (N, 3) tensor: the call's own complaint
    error(args + module, "to take inputs ['x1', 'x2', 'x3'] as a dict, a list or one tensor",
          'Layer "head" expects 1 input(s), but it received 3')
    error(["structure", "--model", tmp_path / "sub.keras"] + module,
          "subclassed model", "no graph to read")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", x=rng.normal(size=(N, 3)).astype("float32"))
    out = cli(_ablate(tmp_path / "sub.keras", tmp_path / "one.npz") + module).output
    assert re.search(r"output_0 +x +n/a .* depends", out), out


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (1, 2)])  # (heads, inputs)
def test_one_input_or_one_head_is_still_a_matrix(tmp_path, shape):
    heads, n_inputs = shape
    xs = [keras.Input((m.T, m.F), name=f"in_{i}") for i in range(n_inputs)]
    flat = [keras.layers.Flatten()(x) for x in xs]
    merged = flat[0] if n_inputs == 1 else keras.layers.concatenate(flat)
    outs = [keras.layers.Dense(1, activation="sigmoid", name=f"out_{h}")(merged)
            for h in range(heads)]
    model = keras.Model(xs[0] if n_inputs == 1 else xs, outs[0] if heads == 1 else outs)
    paths = _save(tmp_path, model)
    out = json.loads(cli(["ablate", "--model", paths[0], "--data", paths[1], "--json"]).stdout)
    assert np.shape(out["effect"]) == shape and out["samples"] == N
    assert out["verdict"] == [["depends"] * n_inputs] * heads
    assert np.min(out["effect"]) > 1e-3  # every cell really moved


def test_code_in_the_model_file_is_refused_unless_opted_in(tmp_path):
    x = keras.Input((m.T, m.F), name="x1")
    doubled = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    model = keras.Model(x, keras.layers.Dense(1, name="head")(keras.layers.Flatten()(doubled)))
    paths = _save(tmp_path, model)
    args = ["ablate", "--model", paths[0], "--data", paths[1], "--mode", "zero"]
    error(args, "carries code (a Lambda layer)", "--unsafe")
    out = json.loads(cli(args + ["--unsafe", "--json"]).stdout)
    assert out["verdict"] == [["depends"]] and out["effect"][0][0] > 1e-3


def test_custom_layers_load_with_custom_module(files, tmp_path, monkeypatch):
    x = keras.Input((m.T, m.F), name="x1")
    y = _custom_module(files).Doubler(name="double")(x)
    model = keras.Model(x, keras.layers.Dense(1, name="head")(keras.layers.Flatten()(y)))
    paths = _save(tmp_path, model)
    args = ["ablate", "--model", paths[0], "--data", paths[1], "--mode", "zero", "--json"]
    error(args, "custom class 'Doubler'", "--custom-module MODULE")
    by_file = json.loads(cli(args + ["--custom-module", files / "robust_layers.py"]).stdout)
    monkeypatch.syspath_prepend(str(files))
    by_name = json.loads(cli(args + ["--custom-module", "robust_layers"]).stdout)
    assert by_file["effect"] == by_name["effect"] and by_file["effect"][0][0] > 1e-3
    error(args + ["--custom-module", "no_such_module_xyz"], "Expected an importable module",
          "'no_such_module_xyz'", "ModuleNotFoundError")


@pytest.mark.slow
def test_a_real_process_prints_one_line_and_no_traceback(files, tmp_path):
    (tmp_path / "bad.keras").write_text("not a model")
    code = "from probes.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code, *_ablate(tmp_path / "bad.keras",
                                                               files / "data.npz")],
                         capture_output=True, text=True, timeout=120, check=False,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("Error: Expected a .keras model file")


# Data files ------------------------------------------------------------------------------

def _data(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return tmp_path / "d.npz"


def _good(n=N, seed=0):
    return m.random_inputs(m.three_by_three(), n, seed)


@pytest.mark.parametrize("change,fragments", [
    (lambda d: d.pop("x3"), ["Expected arrays for inputs ['x3']", "received keys ['h_ab'"]),
    (lambda d: d.update(x2=d["x2"][..., :2]),
     ["'x2' of shape (N, 4, 3); received (30, 4, 2)"]),
    (lambda d: d.update(x1=d["x1"].astype(str)), ["Expected numeric", "'x1'", "dtype <U"]),
    (lambda d: d.update(x1=d["x1"] + 1j), ["Expected numeric", "'x1'", "dtype complex"]),
    (lambda d: d.update(x2=d["x2"][:29]),
     ["Expected the same number of samples in every input", "'x2': 29"]),
    (lambda d: d["x1"].__setitem__((3, 1, 2), np.nan), ["finite values", "'x1'", "received 1"]),
    (lambda d: d["x3"].__setitem__((0, 0, 0), np.inf), ["finite values", "'x3'"]),
    (lambda d: d.update(x1=np.full((N, m.T, m.F), 1e39)), ["finite values", "'x1'",
                                                             "after casting to float32"]),
    (lambda d: d.update(x1=np.array([object()] * 3, dtype=object)),
     ["object array for input 'x1'", "unpickling"]),
    (lambda d: d.update(h_ab=np.ones(N - 1)), ["Expected 30 labels for head 'h_ab'"]),
    (lambda d: d.update(h_ab=np.ones((N, 2))), ["labels for head 'h_ab' with 1 value(s)", "(30,) or (30, 1); received (30, 2)"]),
    (lambda d: d.update(h_ab=np.full(N, np.nan)), ["Expected finite labels for head 'h_ab'"]),
    (lambda d: d.update(h_ab=np.array(["yes"] * N)), ["Expected numeric labels", "'h_ab'"]),
])
def test_bad_data_names_the_problem(files, tmp_path, change, fragments):
    arrays = dict(_good(), h_ab=np.ones(N), h_b=np.zeros(N), h_zero=np.ones(N))
    change(arrays)
    error(_ablate(files / "model.keras", _data(tmp_path, **arrays)), *fragments)


@pytest.mark.parametrize("kind,fragments", [
    ("npy", ["received a single .npy array"]),
    ("text", ["(a zip archive of arrays)", "which is not one"]),
    ("truncated", ["or truncated"]),
    ("damaged", ["Expected a readable array for input"]),
])
def test_data_files_that_are_not_npz(files, tmp_path, kind, fragments):
    path = tmp_path / "d.npz"
    if kind == "npy":
        np.save(tmp_path / "d.npy", _good()["x1"])
        (tmp_path / "d.npy").rename(path)
    elif kind == "text":
        path.write_text("x1,x2,x3\n1,2,3\n")
    else:
        np.savez(path, **_good())  # uncompressed: bytes of the arrays lie in the file as is
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            data = data[:len(data) // 2]
        else:
            data[len(data) // 2] ^= 0xFF  # inside an array's bytes: the CRC check fails
        path.write_bytes(bytes(data))
    error(_ablate(files / "model.keras", path), *fragments)


def test_extra_arrays_are_named_and_object_extras_never_unpickled(files, tmp_path):
    path = _data(tmp_path, **_good(), arr_0=np.zeros(3), notes=np.array([{}], dtype=object))
    result = cli(_ablate(files / "model.keras", path))
    assert f"ignored arrays in {path}: arr_0, notes" in result.stderr


def test_labels_present_partial_or_absent(files, tmp_path):
    labels = {"h_ab": np.ones(N), "h_b": np.zeros(N), "h_zero": np.ones(N)}
    full = cli(_ablate(files / "model.keras", _data(tmp_path, **_good(), **labels), "--json"))
    assert "labels for every head (h_ab, h_b, h_zero): loss effects computed" in full.stderr
    assert np.shape(json.loads(full.stdout)["loss_effect"]) == (3, 3)
    partial = cli(_ablate(files / "model.keras", _data(tmp_path, **_good(), h_ab=np.ones(N)),
                          "--json"))
    assert "labels for h_ab but none for h_b, h_zero" in partial.stderr
    assert "loss_effect" not in json.loads(partial.stdout)
    none = cli(_ablate(files / "model.keras", _data(tmp_path, **_good()), "--json"))
    assert "no labels in the data" in none.stderr and "loss_effect" not in json.loads(
        none.stdout)


@pytest.mark.parametrize("rows,extra,said", [(10, [], "10 sample(s) (all the data)"),
                                             (N, ["--samples", "1"], "1 sample(s) (--samples)")])
def test_few_samples_give_per_sample_results_and_too_few_samples(files, tmp_path, rows, extra,
                                                                  said):
    path = _data(tmp_path, **_good(rows))
    out = cli(_ablate(files / "model.keras", path, *extra, "--mode", "zero", "--json",
                      "--out", tmp_path / "res"))
    assert said in out.stderr and "too_few_samples" in out.stderr
    res = json.loads(out.stdout)
    n = 1 if extra else rows
    assert res["samples"] == n
    # No cell is tested: every cell the 3x3 model depends on is too_few_samples, and the
    # graph's structural zeros and the planted exact zero (h_zero <- x3) remain.
    assert res["verdict"] == [[v.replace("depends", "too_few_samples") for v in row]
                              for row in m.KNOWN_3x3]
    saved = load(next((tmp_path / "res").glob("ablation-zero-*.json")))
    assert saved.effects.shape[2] == n


def test_token_ids_the_model_cannot_take(tmp_path):
    model, data = _save(tmp_path, m.token_model(), n=25)
    bad = dict(np.load(data))
    bad["tokens_a"][0, 0] = 12  # vocabulary of 10
    np.savez(tmp_path / "bad.npz", **bad)
    error(["ablate", "--model", model, "--data", tmp_path / "bad.npz"],
          "received an error from the model", "12 is not in [0, 10)")
    # Float arrays of whole numbers are token ids too (a token input is found from the graph);
    # fractions are not.
    bad["tokens_a"] = bad["tokens_a"].astype("float32")
    np.savez(tmp_path / "bad.npz", **bad)
    error(["ablate", "--model", model, "--data", tmp_path / "bad.npz"],
          "received an error from the model", "12 is not in [0, 10)")
    bad["tokens_a"][0, 0] = 0.5
    np.savez(tmp_path / "bad.npz", **bad)
    error(["ablate", "--model", model, "--data", tmp_path / "bad.npz"],
          "Expected integer token ids", "'tokens_a'", "non-integer")


def test_a_model_whose_outputs_are_nan_is_an_error_not_a_verdict(tmp_path):
    x = keras.Input((m.T, m.F), name="x1")
    dense = keras.layers.Dense(1, name="head")
    model = keras.Model(x, dense(keras.layers.Flatten()(x)))
    dense.set_weights([np.full((m.T * m.F, 1), np.nan, "float32"), np.zeros(1, "float32")])
    paths = _save(tmp_path, model)
    error(["ablate", "--model", paths[0], "--data", paths[1]],
          "Expected finite outputs from head 'head'", "first at sample 0")
