"""The model kinds of issue 27 (tests/zoo_kinds.py: Sequential, subclassed, strings and
categories encoded by the model, a shared attention block): every planted cell recovered by
ablation and by integrated gradients, from Python and from the CLI, and the string input's
attribution checked against the same path integral taken by hand."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import probes
import probes.testing
from probes.cli import main
from tests import zoo_kinds
from tests.test_robustness import cli

ZOO = {name: build() for name, build in zoo_kinds.KINDS.items()}


def _cells(spec):
    return [(h, i, v) for h, row in spec.expected.items() for i, v in row.items()]


@pytest.mark.parametrize("kind", sorted(ZOO))
@pytest.mark.parametrize("probe", ["ablate", "attribute"])
def test_planted_cells_recovered_from_python(kind, probe):
    spec = ZOO[kind]
    res = getattr(probes, probe)(spec.model, spec.data)
    got = {(h, i): res.verdict(h, i) for h, i, _ in _cells(spec)}
    assert got == {(h, i): v for h, i, v in _cells(spec)}
    for h, i, v in _cells(spec):  # the zeros are exact, not small
        cell = res.effects[res.heads.index(h), res.inputs.index(i)]
        assert (np.all(cell == 0.0)) == (v != "depends"), (h, i, v)


@pytest.mark.parametrize("kind", ["subclassed", "structured", "text_pair"])
def test_the_users_model_is_not_changed(kind, tmp_path):
    """Probing leaves the weights as they were, and the model still saves and loads to the
    same outputs (the views the probes make must not rewire its graph)."""
    spec = ZOO[kind]
    before = [w.copy() for w in spec.model.get_weights()]
    probes.attribute(spec.model, spec.data, samples=8)
    probes.ablate(spec.model, spec.data, samples=8)
    assert all(np.array_equal(a, b) for a, b in zip(before, spec.model.get_weights()))
    spec.model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras",
                                     custom_objects=zoo_kinds.CUSTOM_OBJECTS)
    for a, b in zip(keras.tree.flatten(spec.model(spec.data)),
                    keras.tree.flatten(loaded(spec.data))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _verdicts(out: str) -> dict:
    """{(head, input): verdict} from a command's --json."""
    doc = json.loads(out)
    return {(h, i): doc["verdict"][a][b] for a, h in enumerate(doc["heads"])
            for b, i in enumerate(doc["inputs"])}


def _cli(args, code=0):
    """A command's stdout (its error line on stderr when it fails), checked as
    tests.test_robustness.cli checks it."""
    result = cli(args, code)
    return result.stdout if code == 0 else result.output


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """kind -> (.keras, .npz): the files a user brings (strings as numpy unicode arrays)."""
    d = tmp_path_factory.mktemp("kinds")
    out = {}
    for kind in sorted(ZOO):
        spec = ZOO[kind]
        spec.model.save(d / f"{kind}.keras")
        np.savez(d / f"{kind}.npz", **spec.data)
        out[kind] = (d / f"{kind}.keras", d / f"{kind}.npz")
    return out


@pytest.mark.parametrize("kind", sorted(ZOO))
@pytest.mark.parametrize("command", ["ablate", "attribute"])
def test_planted_cells_recovered_from_the_cli(saved, kind, command):
    model, data = saved[kind]
    extra = ["--custom-module", zoo_kinds.__file__] if kind.startswith("subclassed") else []
    verdicts = _verdicts(_cli([command, "--model", model, "--data", data, "--json"] + extra))
    assert verdicts == {(h, i): v for h, i, v in _cells(ZOO[kind])}


def test_a_subclassed_model_has_no_graph_to_read(saved):
    model, _ = saved["subclassed"]
    module = ["--custom-module", zoo_kinds.__file__]
    out = _cli(["structure", "--model", model] + module, code=1)
    assert re.fullmatch(r"Error: Expected a functional or Sequential model; received "
                        r"subclassed model 'pair_model' \(PairModel\), whose call is Python "
                        r"code with no graph to read: .*\n", out), out
    spec = ZOO["subclassed"]
    with pytest.raises(ValueError, match="no graph to read"):
        probes.testing.assert_no_path(spec.model, "h2", "a")
    table = _cli(["ablate", "--model", model, "--data", saved["subclassed"][1]] + module)
    assert re.search(r"h2 +a +n/a +0 .* zero", table), table  # no path claimed either way


def test_string_inputs_ablations_and_refusals(saved):
    model, data = saved["structured"]
    for mode in ("mean", "noise"):
        out = _cli(["ablate", "--model", model, "--data", data, "--mode", mode], code=1)
        assert re.search(rf"Error: Expected numbers for {mode} ablation; received input "
                         r"'ca', which the model encodes \(integer_lookup\)", out), out
    out = _cli(["ablate", "--model", model, "--data", data, "--mode", "occlusion"], code=1)
    assert "Expected token ids for occlusion ablation" in out, out
    model, data = saved["text_pair"]
    verdicts = _verdicts(_cli(["ablate", "--model", model, "--data", data, "--mode",
                               "occlusion", "--json"]))
    assert verdicts[("topic_a", "question_b")] == "structural_zero"
    assert verdicts[("topic_a", "question_a")] == "depends"


def test_zero_ablation_of_a_category_is_its_out_of_vocabulary_encoding():
    spec = ZOO["structured"]
    res = probes.ablate(spec.model, spec.data, mode="zero", samples=16)
    # By hand: thal set to "" (out of the vocabulary), the model called on it.
    x = {k: v[:16] for k, v in spec.data.items()}
    blank = dict(x, thal=np.full_like(x["thal"], ""))
    base, moved = spec.model(x), spec.model(blank)
    h = res.heads.index("risk")
    want = np.abs(np.asarray(moved[h]) - np.asarray(base[h])).sum(axis=1)
    np.testing.assert_allclose(res.effects[h, res.inputs.index("thal")], want, rtol=1e-5,
                               atol=1e-6)  # float32 passes of other widths


def test_show_prints_the_tokens_text(saved):
    model, data = saved["text_pair"]
    out = _cli(["attribute", "--model", model, "--data", data, "--show", "0", "--color",
                "never", "--samples", "8"])
    first = str(ZOO["text_pair"].data["question_a"][0, 0]).lower().split()
    assert " ".join(first) in out, out


def test_string_attribution_equals_the_path_integral_by_hand():
    """Integrated gradients of `same` (probability space, zero baseline, 16 Gauss-Legendre
    nodes) for question_a, taken by hand at the shared Embedding's output: rtol 1e-5."""
    spec = ZOO["text_pair"]
    model, raw = spec.model, {k: v[:16] for k, v in spec.data.items()}
    res = probes.attribute(model, raw, space="probability", steps=16,
                           quadrature="gauss_legendre", baseline="zero")
    import tensorflow as tf

    layer = {name: model.get_layer(name) for name in ("vectorize", "shared_embedding",
                                                      "pool", "same")}
    points = [tf.constant(layer["shared_embedding"](layer["vectorize"](raw[k])))
              for k in ("question_a", "question_b")]  # (n, 12, 8) each

    def same(ea, eb):  # the head from the embedding outputs, as the model computes it
        pooled = [layer["pool"](e) for e in (ea, eb)]
        return layer["same"](keras.ops.concatenate(pooled, axis=-1))[:, 0]

    nodes, weights = np.polynomial.legendre.leggauss(16)
    grads = [np.zeros(p.shape) for p in points]
    for alpha, w in zip((nodes + 1) / 2, weights / 2):
        scaled = [alpha * p for p in points]
        with tf.GradientTape() as tape:
            tape.watch(scaled)
            total = tf.reduce_sum(same(*scaled))
        for g, d in zip(grads, tape.gradient(total, scaled)):
            g += w * np.asarray(d, np.float64)
    h = res.heads.index("same")
    for i, (p, g) in enumerate(zip(points, grads)):
        attribution = np.asarray(p, np.float64) * g  # (n, 12, 8)
        np.testing.assert_allclose(res.effects[h, i], np.abs(attribution).sum(axis=(1, 2)),
                                   rtol=1e-5)
        # signed sums cancel: rtol 1e-5 of the sample's attribution, not of the sum
        signed = attribution.sum(axis=(1, 2))
        np.testing.assert_array_less(np.abs(res.signed[h, i] - signed),
                                     1e-5 * np.abs(attribution).sum(axis=(1, 2)))
    assert np.all(np.abs(res.signed[h]) > 1e-4)  # not trivially equal zeros
    assert res.params["embedded_inputs"] == {"question_a": "shared_embedding",
                                             "question_b": "shared_embedding"}
    assert res.params["encoded_inputs"] == {"question_a": ["vectorize"],
                                            "question_b": ["vectorize"]}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["subclassed", "text_pair", "structured"])
def test_report_on_each_kind(saved, kind, tmp_path):
    """`probe report` on a user's file of each kind: a PDF, every page, no traceback; what a
    kind cannot show is said in one line (a subclassed model's graph, a category's
    occlusion)."""
    from pypdf import PdfReader

    model, data = saved[kind]
    extra = ["--custom-module", zoo_kinds.__file__] if kind == "subclassed" else []
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data),
                                       "--out", str(tmp_path / "r.pdf"), "--cache-dir",
                                       str(tmp_path / "cache"), "--samples", "32"] + extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    text = "\n".join(page.extract_text() for page in PdfReader(tmp_path / "r.pdf").pages)
    for head in ZOO[kind].expected:
        assert head in text
    if kind == "subclassed":
        assert "no graph to read" in text


JAX_SCRIPT = """
import json, sys
import numpy as np, keras, probes
from click.testing import CliRunner
from probes.cli import main
from tests import zoo_kinds
from tests.test_robustness import cli

out = {"backend": keras.config.backend(), "python": {}, "cli": {}, "effects": {}}
for kind, build in zoo_kinds.KINDS.items():
    spec = build()
    for probe in ("ablate", "attribute"):
        res = getattr(probes, probe)(spec.model, spec.data)
        out["python"][f"{kind}/{probe}"] = {f"{h}|{i}": res.verdict(h, i)
                                            for h in spec.expected for i in spec.expected[h]}
        out["effects"][f"{kind}/{probe}"] = res.effects.tolist()
for kind in zoo_kinds.KINDS:
    model, data = sys.argv[1] + f"/{kind}.keras", sys.argv[1] + f"/{kind}.npz"
    extra = ["--custom-module", zoo_kinds.__file__] if kind.startswith("subclassed") else []
    for command in ("ablate", "attribute"):
        r = CliRunner().invoke(main, [command, "--model", model, "--data", data, "--json"]
                               + extra)
        assert r.exit_code == 0 and "Traceback" not in r.output, r.output
        doc = json.loads(r.stdout)
        out["cli"][f"{kind}/{command}"] = {
            f"{h}|{i}": doc["verdict"][a][b] for a, h in enumerate(doc["heads"])
            for b, i in enumerate(doc["inputs"])}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_every_kind_under_jax_gives_tensorflows_answer(saved, tmp_path):
    """The zoo under KERAS_BACKEND=jax (a subprocess): every planted cell from Python and the
    CLI, and the effects equal TensorFlow's (ablation to float32 rounding, integrated gradients
    to 1e-4 relative), strings and subclassed models included."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = saved["subclassed"][0].parent
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(folder)], cwd=root,
                         env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    for key, verdicts in list(out["python"].items()) + list(out["cli"].items()):
        spec = ZOO[key.split("/")[0]]
        assert verdicts == {f"{h}|{i}": v for h, i, v in _cells(spec)}, key
    for key, effects in out["effects"].items():
        kind, probe = key.split("/")
        spec = ZOO[kind]
        tf_effects = getattr(probes, probe)(spec.model, spec.data).effects
        jax_effects = np.asarray(effects)
        assert np.array_equal(tf_effects == 0, jax_effects == 0), key  # the same exact zeros
        if probe == "ablate":
            np.testing.assert_allclose(jax_effects, tf_effects, rtol=1e-4, atol=1e-6,
                                       err_msg=key)
        else:
            np.testing.assert_allclose(jax_effects, tf_effects, rtol=1e-4,
                                       atol=1e-4 * np.abs(tf_effects).max(), err_msg=key)
