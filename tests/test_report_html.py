"""report.html: the web page `probe report` writes beside the PDF. Its embedded data equal the
saved results' summaries (no browser), and in a real browser (headless system Chromium driven
by Playwright, the slow set) it loads without console errors, every section draws a figure,
hovering a matrix cell shows its interval, a click shows the cell's distribution and choosing
another pair changes the coloured text. Screenshots of every section are saved under
$MTL_PROBE_ARTIFACTS/report-html (or the test's tmp_path) as artifacts."""

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from probes.cli import main
from probes.results import filenames, resultio
from reports.html_data import SUMMARY_FIELDS
from tests import models as m

N = 40  # samples: enough for the statistics, still quick
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("answer", "models", "text", "faithfulness", "sanity", "settings")


def embedded(page: Path) -> dict:
    """The page's data block, as the browser reads it."""
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.S)
    assert found, "no report-data block"
    return json.loads(found.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def user_report(tmp_path_factory):
    """`probe report --model --data` on tests.models' 3 inputs x 3 heads, with labels."""
    directory = tmp_path_factory.mktemp("html")
    model = m.three_by_three()
    model.save(directory / "m.keras")
    rng = np.random.default_rng(0)
    labels = {h: rng.integers(0, 2, N) for h in ("h_ab", "h_b", "h_zero")}
    np.savez(directory / "d.npz", **m.random_inputs(model, N), **labels)
    result = CliRunner().invoke(main, ["report", "--model", str(directory / "m.keras"),
                                       "--data", str(directory / "d.npz"),
                                       "--out", str(directory / "user.pdf")])
    assert result.exit_code == 0, result.output
    return directory


def _equal(page_value, saved) -> None:
    """Numbers exactly equal (NaN is null in JSON); strings and booleans equal."""
    saved = np.asarray(saved)
    page_value = np.asarray(page_value, dtype=object)
    assert page_value.shape == saved.shape
    for a, b in zip(page_value.ravel(), saved.ravel()):
        if saved.dtype.kind == "f":
            assert (a is None and math.isnan(b)) or a == b, (a, b)
        else:
            assert a == b, (a, b)


def test_page_data_equal_the_saved_results(user_report):
    page = user_report / "user.html"
    assert page.is_file()  # beside the PDF, same stem
    data = embedded(page)
    (sub,) = data["subjects"]
    assert sub["heads"] == ["h_ab", "h_b", "h_zero"] and sub["inputs"] == ["x1", "x2", "x3"]
    probes_dir = user_report / "user-results" / "probes"
    checked = 0
    for name, shown in sub["probes"].items():
        # the JSON the CLI wrote, read back as the PDF reads it
        res = resultio.load(probes_dir / f"{filenames.stem(name, N, 0)}.json")
        summ = res.summary()
        for field in SUMMARY_FIELDS:
            _equal(shown[field], getattr(summ, field))
        _equal(shown["effects"], res.effects)
        checked += 1
    assert checked == 5
    assert sub["probes"]["ablation/shuffle"]["verdict"][1][0] == "structural_zero"
    assert "h_ab" in data["answer"] and "Decision rule" in data["methods"]


@pytest.mark.slow
def test_html_options(user_report):
    out = user_report / "again.pdf"
    args = ["report", "--model", str(user_report / "m.keras"),
            "--data", str(user_report / "d.npz"), "--out", str(out)]
    result = CliRunner().invoke(main, args + ["--no-html"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not out.with_suffix(".html").exists()
    result = CliRunner().invoke(main, args + ["--html", str(user_report / "page.html")])
    assert result.exit_code == 0 and (user_report / "page.html").is_file()
    assert "page.html" in result.output
    result = CliRunner().invoke(main, args + ["--no-html", "--html", "x.html"])
    assert result.exit_code == 2 and "Expected --html PATH or --no-html" in result.output


def _artifacts(tmp_path, name) -> Path:
    root = os.environ.get("MTL_PROBE_ARTIFACTS")
    folder = (Path(root) if root else tmp_path) / "report-html" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _browse(page_path: Path, shots: Path, sections=SECTIONS) -> dict:
    """Opens the page in headless Chromium; checks every section, hovers and clicks the first
    matrix cell, and (with coloured text) chooses another pair. Returns what it saw."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("Expected playwright (the test extra: pip install '.[test]')")
    if not Path(CHROMIUM).is_file():  # .ci/run installs it; a skip would hide the test
        pytest.fail(f"Expected Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    seen = {"errors": []}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda msg: seen["errors"].append(msg.text)
                    if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda err: seen["errors"].append(str(err)))
            page.goto(page_path.resolve().as_uri())
            page.wait_for_function("window.Bokeh && Object.keys(Bokeh.index).length > 0")
            page.wait_for_timeout(500)
            for key in sections:
                section = page.locator(f"#section-{key}")
                section.screenshot(path=str(shots / f"{key}.png"))
                seen[key] = (page.locator(f"#section-{key} canvas").count()
                             + page.locator(f"#section-{key} .tweet").count()
                             + page.locator(f"#section-{key} table").count())
            figs = page.locator("#section-answer .bk-Figure").all()
            first = min(figs, key=lambda f: (f.bounding_box()["y"], f.bounding_box()["x"]))
            first.scroll_into_view_if_needed()
            box = first.bounding_box()
            # the top-left cell: a matrix figure's frame starts inside its axes' margins
            for fx, fy in ((0.3, 0.3), (0.25, 0.25), (0.35, 0.35), (0.3, 0.2)):
                page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                page.wait_for_timeout(150)
                seen["hover"] = page.locator(".bk-tooltip-content").all_inner_texts()
                if seen["hover"]:
                    page.mouse.click(box["x"] + fx * box["width"],
                                     box["y"] + fy * box["height"])
                    break
            page.wait_for_timeout(300)
            seen["clicked"] = page.get_by_text("per-sample effects, mean").all_inner_texts()
            page.locator("#section-answer").screenshot(path=str(shots / "answer-clicked.png"))
            if page.locator("#section-text select").count():
                seen["text_before"] = page.locator("#section-text .tweet").all_inner_texts()
                pair = page.locator("#section-text select").nth(1)
                options = pair.locator("option").all()
                current = pair.input_value()
                other = next(o.get_attribute("value") for o in options
                             if o.get_attribute("value") != current)
                pair.select_option(other)
                page.wait_for_timeout(300)
                seen["text_after"] = page.locator("#section-text .tweet").all_inner_texts()
                page.locator("#section-text").screenshot(path=str(shots / "text-changed.png"))
        finally:
            browser.close()
    return seen


@pytest.mark.slow
def test_user_model_page_in_a_browser(user_report, tmp_path):
    shots = _artifacts(tmp_path, "user-model")
    seen = _browse(user_report / "user.html", shots)
    assert seen["errors"] == []
    for key in ("answer", "models", "faithfulness", "sanity", "settings"):
        assert seen[key] > 0, key  # a figure (canvas) or the settings' tables
    assert any("interval:" in t and "[" in t for t in seen["hover"]), seen["hover"]
    data = embedded(user_report / "user.html")
    shuffle = data["subjects"][0]["probes"]["ablation/shuffle"]
    low = f"{shuffle['ci_low'][0][0]:.4g}"
    assert any(low in t for t in seen["hover"]), (low, seen["hover"])
    assert seen["clicked"] and f"{N} per-sample effects" in seen["clicked"][0]
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        [f"{k}.png" for k in SECTIONS] + ["answer-clicked.png"])


@pytest.mark.slow
def test_seed_variants_page_in_a_browser(tiny_runs, tmp_path):
    out = tmp_path / "report.pdf"
    args = ["report", "--out", str(out), "--samples", "64"]
    for variant in ("concat", "separate"):
        args += ["--run", str(tiny_runs[variant].path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    page = tmp_path / "report.html"
    data = embedded(page)
    assert [s["label"] for s in data["subjects"]] == ["concat", "separate"]
    assert set(data["text"]["subjects"]) == {"concat", "separate"}
    seen = _browse(page, _artifacts(tmp_path, "seed-variants"))
    assert seen["errors"] == []
    for key in SECTIONS:
        assert seen[key] > 0, key
    assert any("interval:" in t for t in seen["hover"]), seen["hover"]
    assert seen["text_before"] and seen["text_after"] != seen["text_before"]
    if os.environ.get("MTL_PROBE_ARTIFACTS"):  # the page itself, beside its screenshots
        shutil.copy(page, _artifacts(tmp_path, "seed-variants") / "report.html")


def _sharing_page(user_report, seeds, tmp_path):
    """(the page of the user's report with a sharing result of `seeds`, the result)."""
    from probes.results import transfer
    from tests.test_sharing import _result

    rng = np.random.default_rng(1)
    res = _result({arm: rng.uniform(0.6, 0.9, (2, 1, len(seeds))) for arm in transfer.ARMS},
                  seeds=seeds)
    saved = res.save(tmp_path)
    out = tmp_path / "with-sharing.pdf"
    result = CliRunner().invoke(main, ["report", "--model", str(user_report / "m.keras"),
                                       "--data", str(user_report / "d.npz"), "--out", str(out),
                                       "--sharing-result", str(saved)])
    assert result.exit_code == 0, result.output
    return out.with_suffix(".html"), res


@pytest.mark.parametrize("seeds", [(0, 1, 2, 3), (0,)], ids=["4 seeds", "1 seed"])
def test_sharing_curves_on_the_page_equal_the_result(user_report, seeds, tmp_path):
    """The sharing section (`--sharing-result`): its curves are the result's own intervals
    (one seed: no interval, null on the page), and the section is drawn."""
    from probes.results import transfer

    page, res = _sharing_page(user_report, seeds, tmp_path)
    shown = embedded(page)["sharing"]
    assert shown["sizes"] == [10] and shown["sentences"] == res.sentences()
    for head in res.heads:
        for arm in transfer.ARMS:
            c = res.interval(head, arm, 10)
            _equal(shown["curves"][head][arm]["mean"], [c.mean])
            _equal(shown["curves"][head][arm]["low"], [c.low])
            _equal(shown["curves"][head][arm]["high"], [c.high])
    assert '<section id="section-sharing">' in page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_sharing_page_in_a_browser(user_report, tmp_path):
    """One seed (no intervals: nulls in the curves) draws without a console error."""
    page, _ = _sharing_page(user_report, (0,), tmp_path)
    seen = _browse(page, _artifacts(tmp_path, "sharing"), SECTIONS + ("sharing",))
    assert seen["errors"] == [] and seen["sharing"] > 0, seen
