"""Models written by other people (tests/zoo.py), each with a planted truth, through every
probe command end to end: the toolkit must handle any functional Keras model, and give the
planted verdict in every cell.

Each model is saved once per module (.keras + .npz of 64 samples) and probed through the CLI.
"""

import json

import pypdf
import pytest
from click.testing import CliRunner

from probes.cli import main
from tests import zoo

SAMPLES = "64"


def cli(args):
    """Runs `probe ARGS`; checks exit 0 and that no exception escaped the CLI."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    # CliRunner swallows tracebacks: an escaped exception shows up here instead.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module", params=sorted(zoo.ZOO))
def saved(request, tmp_path_factory):
    """(specimen, model path, data path) of one zoo model, saved once for every test."""
    specimen = zoo.ZOO[request.param]()
    model_path, data_path = zoo.save(specimen, tmp_path_factory.mktemp(request.param))
    return specimen, model_path, data_path


def _cells(out) -> dict:
    """{(head, input): verdict} from a probe's JSON grid (rows heads, columns inputs)."""
    return {(h, i): out["verdict"][a][b] for a, h in enumerate(out["heads"])
            for b, i in enumerate(out["inputs"])}


def _expected(specimen) -> dict:
    return {(h, i): v for h, row in specimen.expected.items() for i, v in row.items()}


def _check_names(out, specimen):
    # Heads by the model's own output names (the dict keys for the ticket model), inputs in
    # model order.
    assert sorted(out["heads"]) == sorted(specimen.expected), out["heads"]
    assert out["inputs"] == list(specimen.data), out["inputs"]


def test_structure_finds_every_path(saved):
    specimen, model_path, _ = saved
    out = json.loads(cli(["structure", "--model", model_path, "--json"]).stdout)
    _check_names(out, specimen)
    reach = {(h, i): out["structural"][a][b] for a, h in enumerate(out["heads"])
             for b, i in enumerate(out["inputs"])}
    assert reach == {cell: v != "structural_zero" for cell, v in _expected(specimen).items()}


@pytest.mark.parametrize("mode", ["shuffle", "zero", "occlusion"])
def test_ablate_gives_the_planted_verdicts(saved, mode):
    specimen, model_path, data_path = saved
    out = json.loads(cli(["ablate", "--model", model_path, "--data", data_path, "--mode",
                          mode, "--samples", SAMPLES, "--json"]).stdout)
    _check_names(out, specimen)
    assert out["samples"] == int(SAMPLES)
    assert _cells(out) == _expected(specimen)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_attribute_gives_the_planted_verdicts(saved, method):
    specimen, model_path, data_path = saved
    out = json.loads(cli(["attribute", "--model", model_path, "--data", data_path, "--method",
                          method, "--samples", SAMPLES, "--json"]).stdout)
    _check_names(out, specimen)
    assert _cells(out) == _expected(specimen)
    # The compared shuffle ablation agrees in every cell (it has the planted truth too).
    assert out["disagreements"] == []


@pytest.mark.slow
def test_report_writes_a_pdf(saved, tmp_path):
    specimen, model_path, data_path = saved
    pdf = tmp_path / "zoo.pdf"
    cli(["report", "--model", model_path, "--data", data_path, "--out", pdf])
    reader = pypdf.PdfReader(str(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 1
    for name in list(specimen.expected) + list(specimen.data):
        assert name in text, name
    if "structural_zero" in _expected(specimen).values():
        assert "structural_zero" in text
