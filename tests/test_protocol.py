"""One result protocol (probes.results.protocol): every family's result has summary(), table()
as text, table_rows(), to_json() that json can write, save() that probes.load reads back bit for
bit, and verdicts from one vocabulary."""

import dataclasses
import functools
import json

import numpy as np
import pytest

import probes
from mtl_models.variants import build_model
from probes.results import resultio
from probes.results.protocol import VERDICTS, Interval, Result
from probes.run.registry import PROBES
from tests.test_sharing import _result as sharing_result

# One probe per family (the registry's kinds), each with the settings that keep it small.
FAMILIES = {"ablation/shuffle": {}, "attribution/integrated_gradients": {"steps": 4},
            "structure": {}, "shared/agreement": {"batch_size": 10},
            "shared/coupling": {}, "paths/decomposition": {}, "paths/interaction": {},
            "faithfulness": {"methods": ["saliency"]},
            "sanity": {"methods": ["saliency", "input"]}}


@functools.lru_cache(maxsize=None)
def _model_and_data():
    model = build_model("concat", seq_len=6, features=5, units=3, seed=1)
    rng = np.random.default_rng(0)
    data = {t.name: np.eye(5, dtype="float32")[rng.integers(0, 5, (30, 6))]
            for t in model.inputs}
    labels = {h: rng.integers(0, 2, 30).astype("float32") for h in ("head_1", "head_2")}
    return model, data, labels


@functools.lru_cache(maxsize=None)
def _result(family):
    if family == "sharing":
        return sharing_result({a: np.linspace(0.6, 0.9, 8) for a in ("tied", "untied",
                                                                      "single")})
    model, data, labels = _model_and_data()
    return PROBES[family](model, data, rng=np.random.default_rng(0), labels=labels, seed=0,
                          **FAMILIES[family])


def _arrays_equal(a, b):
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_arrays_equal(getattr(a, f.name), getattr(b, f.name))
                                           for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
            a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_arrays_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_arrays_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


@pytest.mark.parametrize("family", [*FAMILIES, "sharing"])
def test_every_family_follows_the_protocol(family, tmp_path):
    res = _result(family)
    assert isinstance(res, Result)
    assert res.summary() is not None
    header, rows = res.table_rows()
    assert header and rows and all(len(r) == len(header) for r in rows)
    text = res.table()
    assert isinstance(text, str) and text and str(res) == text
    text_json = json.dumps(res.to_json(), sort_keys=True)  # JSON-ready
    back = probes.load(res.save(tmp_path))
    assert type(back) is type(res) and _arrays_equal(back, res)
    # What is derived from a loaded result is what was derived from the original.
    assert json.dumps(back.to_json(), sort_keys=True) == text_json
    assert back.table() == text
    assert _arrays_equal(back.summary(), res.summary())


def test_every_registered_kind_is_a_result():
    # Every kind probes.load knows (besides the parts nested in others) follows the protocol.
    nested = {"callsite", "headsplit"}
    kinds = [kind for kind in resultio.MODULES if kind not in nested]
    assert len(kinds) == 8  # guard: the families of FAMILIES
    for kind in kinds:
        assert issubclass(resultio.kind_class(kind), Result), kind


@pytest.mark.parametrize("family", ["ablation/shuffle", "structure", "sanity",
                                    "paths/interaction"])
def test_verdicts_come_from_the_one_vocabulary(family):
    res = _result(family)
    if family == "sanity":
        words = {res.verdict(m, h, i) for m in res.methods for h in res.heads
                 for i in res.inputs}
    elif family == "paths/interaction":
        words = {res.verdict(t, a, b) for t in res.targets for a, b in res.input_pairs}
        assert words == set(res.summary().verdict.ravel())
        assert all(res.verdict(t, b, a) == res.verdict(t, a, b)  # either order of the pair
                   for t in res.targets for a, b in res.input_pairs)
    else:
        words = {res.verdict(h, i) for h in res.heads for i in res.inputs}
    assert words and words <= set(VERDICTS), words - set(VERDICTS)


def test_intervals_are_one_type_that_unpacks():
    res, sanity = _result("ablation/shuffle"), _result("sanity")
    got = [res.share_interval("head_1", "tweet_a"), res.interval("head_1", "tweet_a"),
           sanity.interval("saliency", 1, "head_1", "tweet_a"),
           _result("sharing").transfer("head_1", "tied - single", 10)]
    for interval in got:
        assert type(interval) is Interval
        mean, low, high = interval
        assert low <= mean <= high or not np.isfinite(low)
