import subprocess
import sys

import pypdf
import pytest
from click.testing import CliRunner

from probes.cli import main
from tests import models as m


def _text(pdf_path) -> tuple[int, str]:
    reader = pypdf.PdfReader(str(pdf_path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def tiny_report(tiny_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.pdf"
    args = ["report", "--out", str(out), "--samples", "64"]
    for variant in ("concat", "separate"):
        args += ["--run", str(tiny_runs[variant].path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out, tiny_runs


@pytest.mark.slow
def test_report_pages_and_text(tiny_report):
    out, _ = tiny_report
    pages, text = _text(out)
    assert pages == 11  # the same pages for any model
    for word in ("concat", "separate", "tweet_a", "tweet_b", "head_1", "head_2",
                 "shared_lstm", "multi-task", "structural_zero", "interaction contrast",
                 "Where each head reads", "largest smallest share"):
        assert word in text, word
    # The first page's paragraph is generated from the numbers, not fixed text.
    assert "share 0." in text and "Only concat lets a head use information" in text
    # The method page reads the settings from the results: the report's integrated gradients
    # ran a fixed 8 nodes from a shuffle baseline (nothing was doubled), the rule's alpha and
    # bootstrap are the summary's own.
    flat = " ".join(text.split())
    assert "concat: 8 gauss-legendre nodes from a shuffle baseline" in flat
    assert "doubled" not in flat and "(alpha 0.05)" in flat and "2000 resamples" in flat


@pytest.mark.slow
def test_report_is_built_from_saved_results_without_tensorflow(tiny_report, tmp_path):
    out, runs = tiny_report
    # Build again in a fresh interpreter from the saved directories only: TensorFlow must not
    # be imported (nothing is recomputed), and the pages are the same count.
    again = tmp_path / "again.pdf"
    code = ("import sys; from reports.build import build; from probes.run.suite import "
            "REPORT_PROBES; "
            f"build([{str(runs['concat'].path)!r}, {str(runs['separate'].path)!r}], "
            f"{str(again)!r}, probe_names=list(REPORT_PROBES), samples=64, seed=0); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert _text(again)[0] == _text(out)[0]


@pytest.mark.slow
def test_report_reuses_saved_results(tiny_report):
    out, runs = tiny_report
    result = CliRunner().invoke(main, ["report", "--out", str(out), "--samples", "64",
                                       "--run", str(runs["concat"].path)])
    assert result.exit_code == 0
    assert "every result is saved and current: nothing to compute" in result.output


@pytest.mark.slow
def test_report_on_a_users_three_input_model(tmp_path):
    import numpy as np

    model = m.three_by_three()
    model.save(tmp_path / "m.keras")
    x = m.random_inputs(model, 40)
    rng = np.random.default_rng(0)
    labels = {h: rng.integers(0, 2, 40) for h in ("h_ab", "h_b", "h_zero")}
    np.savez(tmp_path / "d.npz", **x, **labels)
    out = tmp_path / "user.pdf"
    result = CliRunner().invoke(main, ["report", "--model", str(tmp_path / "m.keras"),
                                       "--data", str(tmp_path / "d.npz"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pages, text = _text(out)
    assert pages == 11  # the same pages for any model
    for word in ("x1", "x2", "x3", "h_ab", "h_b", "h_zero", "structural_zero"):
        assert word in text, word


def test_report_bad_input_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["report", "--variants", "concat,nope",
                                       "--out", str(tmp_path / "r.pdf")])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "no" / "r.pdf"),
                                       "--run", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.slow
def test_report_with_a_sharing_page(tiny_report, tmp_path):
    import numpy as np

    from probes.results import transfer

    out, runs = tiny_report
    shape = (2, 2, 3)  # heads, sizes, seeds
    rng = np.random.default_rng(0)
    acc = {arm: 0.7 + 0.05 * k + 0.01 * rng.random(shape) for k, arm in enumerate(transfer.ARMS)}
    result = transfer.SharingResult(
        variant="separate", tasks=("group_a", "group_b"), heads=("head_1", "head_2"),
        sizes=(100, 300), seeds=(0, 1, 2), accuracy=acc,
        reference={s: np.full(shape, 0.9) for s in transfer.REFERENCE_SOURCES},
        cosine=[[[[0, 0.5], [24, 0.2]]] * 3] * 2, labelled=(None, None), runs=[], params={})
    saved = result.save(tmp_path)
    pdf = tmp_path / "with-sharing.pdf"
    args = ["report", "--out", str(pdf), "--samples", "64", "--sharing-result", str(saved)]
    for variant in ("concat", "separate"):
        args += ["--run", str(runs[variant].path)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    pages, text = _text(pdf)
    assert pages == 12  # the 11 pages and the sharing page
    assert "What sharing the encoder is worth" in text
    # The paragraph is generated from these numbers: tied - single on head_1 at 100 pairs.
    got = result.transfer("head_1", "tied - single", 100)
    assert f"{got.mean * 100:+.1f} points" in text.replace("\n", " ")
