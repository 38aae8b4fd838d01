"""`probe report --model --data` on users' models of any shape: every page covers the model's own
heads and inputs, and nothing of the built-in question (tweets, head_1/head_2, 280 steps)."""

import importlib.util
import json
import re

import keras
import numpy as np
import pypdf
import pytest
from click.testing import CliRunner
from keras import layers

from probes.cli import main
from tests import models as m

PAGES = 11  # every report has the same pages, whatever the model
N = 40  # samples in each data file: enough for the statistics (at least 20), still quick


def _pages(pdf_path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(str(pdf_path)).pages]


def _builtin_words(text: str) -> list[str]:
    """Words of the built-in question found in `text` (a user's report must have none)."""
    found = [w for w in ("tweet", "head_1", "head_2", "same author", "concat_mlp", "held-out",
                         "shared_lstm") if w in text.lower()]
    # 280 as a number of its own (not 0.280, 1280 or a temporary directory's pytest-280)
    return found + re.findall(r"(?<![\w./-])280(?![\w.])", text)


def _report(directory, model, data, *extra):
    model.save(directory / "model.keras")
    np.savez(directory / "data.npz", **data)
    out = directory / "report.pdf"
    result = CliRunner().invoke(main, ["report", "--model", str(directory / "model.keras"),
                                       "--data", str(directory / "data.npz"), "--out", str(out),
                                       *extra])
    return result, out


def _scale_module(directory):
    path = directory / "scale_layer.py"
    path.write_text(m.SCALE_MODULE)
    spec = importlib.util.spec_from_file_location("scale_layer_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module.Scale


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory):
    """1 input, 1 head behind a custom layer; no labels in the data."""
    directory = tmp_path_factory.mktemp("one")
    module, scale = _scale_module(directory)
    signal = keras.Input((m.T, m.F), name="signal")
    score = layers.Dense(1, activation="sigmoid", name="score")(
        scale(name="scale")(layers.Flatten()(signal)))
    model = keras.Model([signal], [score])
    result, out = _report(directory, model, m.random_inputs(model, N),
                          "--custom-module", str(module))
    return directory, module, result, out


@pytest.fixture(scope="module")
def three_by_three(tmp_path_factory):
    """tests.models' 3 inputs x 3 heads, with a label per head."""
    directory = tmp_path_factory.mktemp("three")
    model = m.three_by_three()
    rng = np.random.default_rng(1)
    labels = {h: rng.integers(0, 2, N).astype("float32") for h in ("h_ab", "h_b", "h_zero")}
    return _report(directory, model, {**m.random_inputs(model, N), **labels})


@pytest.fixture(scope="module")
def multi_unit(tmp_path_factory):
    """2 inputs, 2 heads of several units each (a 3-way softmax and 2 linear units) on shared
    Dense layers, with labels."""
    directory = tmp_path_factory.mktemp("multi")
    left, right = keras.Input((m.T, m.F), name="left"), keras.Input((m.T, 2), name="right")
    trunk = layers.Dense(4, activation="tanh", name="trunk")(
        layers.Dense(4, name="left_dense")(layers.Flatten()(left)))
    merged = layers.concatenate([trunk, layers.Dense(4, name="right_dense")(
        layers.Flatten()(right))])
    model = keras.Model([left, right],
                        [layers.Dense(3, activation="softmax", name="category")(merged),
                         layers.Dense(2, name="position")(merged)])
    rng = np.random.default_rng(2)
    labels = {"category": np.eye(3, dtype="float32")[rng.integers(0, 3, N)],
              "position": rng.normal(size=(N, 2)).astype("float32")}
    return _report(directory, model, {**m.random_inputs(model, N), **labels})


CASES = {"one_by_one": (["signal"], ["score"]),
         "three_by_three": (["x1", "x2", "x3"], ["h_ab", "h_b", "h_zero"]),
         "multi_unit": (["left", "right"], ["category", "position"])}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_page_names_the_models_own_heads_and_inputs(case, request):
    result, out = request.getfixturevalue(case)[-2:]
    assert result.exit_code == 0, result.output
    pages = _pages(out)
    assert len(pages) == PAGES
    inputs, heads = CASES[case]
    for name in inputs + heads:
        assert name in pages[0], name  # the answer: the matrix and the paragraph
        assert name in pages[1], name  # the graph and its reachability
        assert name in pages[3], name  # every probe's matrix
    for name in inputs:
        assert name in pages[4], name  # one profile panel per input
    for k, text in enumerate(pages, 1):
        assert not _builtin_words(text), (k, _builtin_words(text))
    assert "structural_zero" in pages[0] or case != "three_by_three"


@pytest.mark.slow
def test_pages_without_anything_to_show_say_why(one_by_one):
    *_, result, out = one_by_one
    assert result.exit_code == 0, result.output
    pages = _pages(out)
    assert "no labels in the data" in pages[2] and "score" in pages[2]
    assert "1 output, so it is single-task" in pages[0]
    assert "No training record" in pages[8]
    assert "one head (score), so no weights are shared" in pages[8]
    assert "one input, so no pair of inputs" in pages[9]
    assert "not run: shared" in pages[10]


@pytest.mark.slow
def test_labels_and_pairs_of_heads_and_inputs(three_by_three, multi_unit):
    pages = _pages(three_by_three[1])
    assert "change of the loss, ablation/shuffle" in pages[2]
    assert "3 outputs, so it is multi-task" in pages[0]
    # every pair of inputs on the interaction panel: 3 heads x 3 pairs
    for pair in ("x1 x x2", "x1 x x3", "x2 x x3"):
        assert pair in pages[9], pair
    pages = _pages(multi_unit[1])
    assert "change of the loss" in pages[2]
    # coupling between the two heads through the shared Dense layers, both directions
    assert "step category" in pages[8] and "step position" in pages[8]
    assert "No training record" in pages[8]


@pytest.mark.slow
def test_custom_module_is_needed_and_used(one_by_one):
    directory, module, result, _ = one_by_one
    assert result.exit_code == 0, result.output
    # Without it the custom layer cannot be loaded: one line, exit 1, naming the option.
    again = CliRunner().invoke(main, ["report", "--model", str(directory / "model.keras"),
                                      "--data", str(directory / "data.npz"),
                                      "--out", str(directory / "without.pdf")])
    assert again.exit_code == 1, again.output
    assert "--custom-module" in again.output and "Traceback" not in again.output
    assert not (directory / "without.pdf").exists()


def test_custom_module_option_matches_the_probe_commands():
    def option(command):
        text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
        return re.search(r"--custom-module MODULE\s+(.*?)(?=\n\s*--|\Z)", text, re.S).group(1)

    assert " ".join(option("report").split()) == " ".join(option("ablate").split())
    assert "repeatable" in option("report")


@pytest.mark.slow
def test_a_probe_that_does_not_apply_is_named_on_its_pages(three_by_three, tmp_path):
    """A probe `probe report` could not run on a model is recorded with its reason, and the
    pages say so; a result missing without a reason is still an error."""
    import shutil

    from probes.run.suite import REPORT_PROBES
    from reports.build import build

    results = tmp_path / "results"
    shutil.copytree(three_by_three[1].with_name("report-results"), results)
    for suffix in (".json", ".npz"):
        (results / "probes" / f"attribution-saliency-n{N}-seed0{suffix}").unlink()
    with pytest.raises(ValueError, match="saliency"):
        build([results], tmp_path / "r.pdf", probe_names=list(REPORT_PROBES), samples=N, seed=0)
    skipped_file = results / "probes" / f"skipped-n{N}-seed0.json"
    skipped = json.loads(skipped_file.read_text())  # what did not apply: shared weights...
    skipped["attribution/saliency"] = {
        "reason": "Expected a float input; received int32 input 'x1'", "key": "-"}
    skipped_file.write_text(json.dumps(skipped))
    build([results], tmp_path / "r.pdf", probe_names=list(REPORT_PROBES), samples=N, seed=0)
    pages = [" ".join(text.split()) for text in _pages(tmp_path / "r.pdf")]  # unwrapped
    assert len(pages) == PAGES
    assert "attribution/saliency was not run: Expected a float input" in pages[3]
    assert "not run: " in pages[10] and "attribution/saliency (Expected a float input" in pages[10]
