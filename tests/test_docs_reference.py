"""Every public function and command is in the generated reference with its docstring.

"Public" means: every name in `probes.__all__` (what `import probes` gives); the assertions and
the cache of `probes.testing`, its contracts (`probes.testing.contract`) and the pytest
plugin's fixtures (`probes.testing.pytest_plugin`); the two helpers of the demo and the report
that the examples use (`mtl_models.variants.build_model`, `reports.plots.plot_shares`); and
every command of `probe` (the click group `probes.cli.main`). Everything else is internal.
The default set checks that docs/reference/api.md names each of them and that each has a
docstring; the slow set builds the site (`mkdocs build --strict`, the docs extra) and finds
each name with the first line of its docstring in the pages.
"""

import html
import importlib
import inspect
import re
import subprocess
import sys

import pytest

import probes
from probes.cli import main
from tests.docs_examples import ROOT

EXTRA = ["probes.testing.assert_depends", "probes.testing.assert_independent",
         "probes.testing.assert_no_path", "probes.testing.assert_dependencies",
         "probes.testing.ProbeCache", "probes.testing.contract.Contract",
         "probes.testing.contract.load", "probes.testing.pytest_plugin.probed",
         "probes.testing.pytest_plugin.probe_cache", "probes.testing.pytest_plugin.Probed",
         "mtl_models.variants.build_model", "reports.plots.plot_shares"]
NOT_DOCUMENTED_BY_DOCSTRING = {"__version__"}  # a string; the API page says what it is


def public() -> list[str]:
    """The dotted names of the public API (see the module docstring)."""
    return [f"probes.{name}" for name in probes.__all__
            if name not in NOT_DOCUMENTED_BY_DOCSTRING] + EXTRA


def _object(dotted: str):
    module, _, name = dotted.rpartition(".")
    obj = getattr(importlib.import_module(module), name)
    return getattr(obj, "__wrapped__", obj)  # a pytest fixture's function


def first_line(dotted: str) -> str:
    doc = inspect.getdoc(_object(dotted))
    assert doc, f"{dotted} has no docstring"
    return doc.splitlines()[0].strip()


def test_the_api_page_names_every_public_function_and_each_has_a_docstring():
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    named = re.findall(r"^::: ([\w.]+)$", page, flags=re.M)
    assert sorted(named) == sorted(public())
    for dotted in public():
        assert first_line(dotted)
    for name in NOT_DOCUMENTED_BY_DOCSTRING:
        assert f"probes.{name}" in page
    assert set(probes.__all__) - NOT_DOCUMENTED_BY_DOCSTRING  # guard: the API is not empty


def _text(path) -> str:
    """A built page's text: tags and entities decoded, all whitespace dropped (Markdown moves
    it around inline code)."""
    raw = re.sub(r"<[^>]+>", " ", path.read_text())
    return "".join(html.unescape(raw).split())


def _words(line: str) -> str:
    """A docstring line as the rendered Markdown shows it (no backticks or emphasis marks),
    without whitespace, as _text."""
    return "".join(re.sub(r"[`*]", "", line).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_every_public_function_is_in_the_built_reference_with_its_docstring(site):
    text = _text(site / "reference" / "api" / "index.html")
    raw = (site / "reference" / "api" / "index.html").read_text()
    for dotted in public():
        assert f'id="{dotted}"' in raw, dotted
        assert _words(first_line(dotted)) in text, dotted


@pytest.mark.slow
def test_every_command_is_in_the_built_reference_with_its_help(site):
    text = _text(site / "reference" / "cli" / "index.html")
    assert len(main.commands) >= 12
    for name, command in main.commands.items():
        assert f"probe{name}" in text, name
        help_line = " ".join(command.help.split("\n\n")[0].split())
        assert _words(help_line)[:60] in text, name
