"""Saved results are never stale: a changed model or data is recomputed, an unchanged one is not
recomputed at all; every result type round-trips through save and load bit for bit."""

import dataclasses
import functools
import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from probes.cli import main
from probes.results import resultio, store
from probes.results.fingerprint import fingerprint
from probes.results.seeds import generator
from probes.run.registry import PROBES
from tests import models as m

N = 30


def _files(tmp_path, model, data):
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", **data)
    return tmp_path / "model.keras", tmp_path / "data.npz"


def _report(model_path, data_path, out):
    result = CliRunner().invoke(main, ["report", "--model", str(model_path), "--data",
                                       str(data_path), "--out", str(out), "--samples", str(N)])
    assert result.exit_code == 0, result.output
    return result


def _matrix(out, probe="ablation-shuffle"):
    """{head: {input: verdict}} of a saved result in the report's results folder."""
    path = out.with_name(out.stem + "-results") / "probes" / f"{probe}-n{N}-seed0.json"
    return resultio.load(path).matrix()


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The 3x3 model and its data reported once; the tests change a copy of it."""
    tmp = tmp_path_factory.mktemp("stale")
    model = m.three_by_three()
    data = m.random_inputs(model, N)
    model_path, data_path = _files(tmp, model, data)
    out = tmp / "r.pdf"
    _report(model_path, data_path, out)
    return tmp, model, data, out


@pytest.mark.slow
def test_an_unchanged_model_and_data_recompute_nothing(reported):
    tmp, model, data, out = reported
    folder = out.with_name(out.stem + "-results") / "probes"
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npz")}
    result = _report(tmp / "model.keras", tmp / "data.npz", out)
    assert "nothing to compute" in result.stderr
    assert " on 30 samples ..." not in result.stderr  # no probe ran
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npz")} == before
    assert len(before) >= 8  # the guard: the report's results are there to be reused


@pytest.mark.slow
def test_a_changed_model_is_recomputed_and_shown(reported, tmp_path):
    _, model, data, _ = reported
    assert _matrix(reported[3])["h_b"]["x2"] == "depends"
    changed = keras.models.clone_model(model)
    changed.set_weights(model.get_weights())
    head = changed.get_layer("h_b")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # h_b reads nothing now
    # The same file names and --out as before: only the fingerprint can tell.
    shutil.copytree(reported[3].with_name("r-results"), tmp_path / "r-results")
    model_path, data_path = _files(tmp_path, changed, data)
    result = _report(model_path, data_path, tmp_path / "r.pdf")
    assert "stale (model changed)" in result.stderr
    after = _matrix(tmp_path / "r.pdf")
    # h_diff in the words: a head whose kernel is all zeros is `zero` on every input
    # it has a path from, `structural_zero` on the others.
    assert after["h_b"] == {"x1": "structural_zero", "x2": "zero", "x3": "structural_zero"}
    assert after["h_ab"] == _matrix(reported[3])["h_ab"]


@pytest.mark.slow
def test_one_weight_changed_in_place_is_stale_for_the_report(reported, tmp_path):
    # The same model object, one kernel entry nudged in place (no clone, whose config would
    # differ too): only the weights can tell the fingerprint it changed.
    tmp, _, data, out = reported
    model = keras.saving.load_model(tmp / "model.keras")  # the very model reported
    shutil.copytree(out.with_name("r-results"), tmp_path / "r-results")
    _nudge(model.get_layer("h_b").kernel)
    model_path, data_path = _files(tmp_path, model, data)
    result = _report(model_path, data_path, tmp_path / "r.pdf")
    assert "stale (model changed)" in result.stderr
    assert "stale (data changed)" not in result.stderr


def _nudge(variable):
    """Adds 1e-3 to one entry of `variable`, in place."""
    value = variable.numpy()
    value.flat[0] += 1e-3
    variable.assign(value)


def _counted_zero_ablation():
    """(model, data, compute, calls): a small model and data, and a zero ablation of them that
    counts its calls in `calls`."""
    model = m.three_by_three()
    data = m.random_inputs(model, N)
    calls = []

    def compute():
        calls.append(1)
        return PROBES["ablation/zero"](model, data, rng=generator(0, "probe"), seed=0)

    return model, data, compute, calls


def test_one_weight_changed_in_place_makes_a_saved_result_stale(tmp_path):
    model, data, compute, calls = _counted_zero_ablation()
    before = fingerprint(model, data, "ablation/zero", {"seed": 0})
    store.cached(tmp_path, "a", before, compute)
    _nudge(model.get_layer("h_b").kernel)  # the same object, one weight
    after = fingerprint(model, data, "ablation/zero", {"seed": 0})
    assert after["model"] != before["model"] and after["data"] == before["data"]
    lines = []
    _, reused = store.cached(tmp_path, "a", after, compute, report=lines.append)
    assert not reused and len(calls) == 2
    assert lines == ["a: saved result is stale (model changed); recomputing"]


@pytest.mark.slow
def test_changed_data_gives_new_numbers(reported, tmp_path):
    tmp, model, data, out = reported
    other = {k: v + 0.5 for k, v in data.items()}
    model_path, data_path = _files(tmp_path, model, other)
    folder = out.with_name(out.stem + "-results")
    copy = shutil.copytree(folder, tmp_path / "r-results")
    result = _report(model_path, data_path, tmp_path / "r.pdf")
    assert "stale (data changed)" in result.stderr
    old = resultio.load(folder / "probes" / f"ablation-shuffle-n{N}-seed0.json")
    new = resultio.load(copy / "probes" / f"ablation-shuffle-n{N}-seed0.json")
    assert not np.array_equal(old.effects, new.effects)


def test_store_reuses_only_a_matching_fingerprint(tmp_path):
    model, data, compute, calls = _counted_zero_ablation()
    fp = fingerprint(model, data, "ablation/zero", {"seed": 0})
    first, reused = store.cached(tmp_path, "a", fp, compute)
    again, reused_again = store.cached(tmp_path, "a", fp, compute)
    assert (reused, reused_again, len(calls)) == (False, True, 1)
    np.testing.assert_array_equal(first.effects, again.effects)
    other = fingerprint(model, data, "ablation/zero", {"seed": 1})
    assert other["key"] != fp["key"] and other["model"] == fp["model"]
    store.cached(tmp_path, "a", other, compute)
    assert len(calls) == 2
    manifest = json.loads((tmp_path / store.MANIFEST).read_text())
    assert manifest["results"]["a"]["fingerprint"] == other
    assert manifest["versions"]["numpy"] == np.__version__


def _equal(a, b):
    """Bit-for-bit equality of two results of one type, field by field."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)  # NaN equal to NaN
            assert x.tobytes() == y.tobytes(), f.name
        elif dataclasses.is_dataclass(x):
            _equal(x, y)
        elif isinstance(x, tuple) and x and dataclasses.is_dataclass(x[0]):
            for u, v in zip(x, y):
                _equal(u, v)
        else:
            assert x == y, f.name


# The checks with fewer methods: every field of their results all the same, in less time.
LIGHTER = {"faithfulness": {"methods": ["saliency", "occlusion", "random"]},
           "sanity": {"methods": ["saliency", "input"]}}


@functools.lru_cache(maxsize=None)
def _separate():
    """The small separate model (it shares its LSTM) of the tests below: one for the module,
    so they share its traced functions."""
    from mtl_models.variants import build_model

    return build_model("separate", seq_len=6, features=5, units=3, seed=1)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_every_probe_family_round_trips_bit_for_bit(probe, tmp_path):
    model = _separate()
    data = m.random_inputs(model, 24)
    labels = {h: np.random.default_rng(1).integers(0, 2, 24) for h in ("head_1", "head_2")}
    result = PROBES[probe](model, data, rng=generator(0, "probe"), labels=labels, seed=0,
                           model_name="separate", **LIGHTER.get(probe, {}))
    assert getattr(type(result), "KIND", None) in resultio.MODULES  # a registered type
    path = resultio.save(result, tmp_path, "r", fingerprint={"key": "x"})
    _equal(result, resultio.load(path))


def _arrays(result):
    """Every array of a result (the draws, such as partners, included), nested results too."""
    out = []
    for f in dataclasses.fields(result):
        x = getattr(result, f.name)
        if isinstance(x, np.ndarray):
            out.append(x)
        elif isinstance(x, tuple) and x and dataclasses.is_dataclass(x[0]):
            out += [a for item in x for a in _arrays(item)]
    return out


@pytest.mark.parametrize("probe,stochastic", [("shared/agreement", True),
                                              ("paths/interaction", True),
                                              ("shared/coupling", False),
                                              ("paths/decomposition", False)])
def test_seeds_of_the_weight_and_path_probes(probe, stochastic):
    """Same seed, same numbers; another seed changes exactly the probes that draw (the
    mini-batch order of the agreement, the partners of the interaction contrast)."""
    from probes.results.seeds import probe_generator

    model = _separate()
    data = m.random_inputs(model, 40)
    labels = {h: np.random.default_rng(1).integers(0, 2, 40) for h in ("head_1", "head_2")}

    def run(seed):
        kw = {"batch_size": 8} if probe == "shared/agreement" else {}
        return _arrays(PROBES[probe](model, data, rng=probe_generator(probe, seed), labels=labels,
                                     seed=seed, **kw))

    first, again, other = run(0), run(0), run(1)
    assert first and all(a.size for a in first)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    differs = any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert differs == stochastic
