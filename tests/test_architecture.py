"""The architecture is checked, not described: import-linter's contracts (setup.cfg) hold on this
tree and fail on a copy with one upward import; the layout table of the docs
(docs/explanation/architecture.md) is the subpackages' own docstrings."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("results", "model", "engine", "methods", "checks", "run", "testing", "cli")
CONTRACTS = 5


def _lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the packages under `root` (they come first on the import path)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo",
                           str(root / "setup.cfg")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    for name in ("probes", "mtl_models", "reports"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    return tmp_path


def test_every_contract_is_kept():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {CONTRACTS} kept, 0 broken." in done.stdout, done.stdout


@pytest.mark.parametrize("module,line,contract", [
    # the statistics reaching up to the suite that runs the probes
    ("probes/results/stats.py", "from probes.run import suite", "probes: each subpackage"),
    # the library reaching into the demo
    ("probes/engine/forward.py", "from mtl_models import tweets", "probes outside its CLI"),
    # the report running a probe
    ("reports/load.py", "from probes.methods import ablation", "the report (reports)"),
    # two CLI modules importing each other
    ("probes/cli/output.py", "from probes.cli import common", "no circles"),
])
def test_one_upward_import_breaks_a_contract(tmp_path, module, line, contract):
    root = _copy(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{line}  # deliberately upward\n")
    done = _lint(root)
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts")[1]
    assert contract in broken, broken


def _job(sub: str) -> str:
    """The first sentence of a subpackage's docstring: its one job."""
    doc = ast.get_docstring(ast.parse((ROOT / "probes" / sub / "__init__.py").read_text()))
    assert doc, f"probes/{sub} has no docstring"
    return re.split(r"(?<=\.)\s", " ".join(doc.split()), maxsplit=1)[0]


def test_the_documented_layout_is_the_subpackages_docstrings():
    readme = (ROOT / "docs" / "explanation" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\s*\| `probes/(\w+)/` \| (.+?) \|$", readme, re.M))
    assert sorted(rows) == sorted(SUBPACKAGES)
    for sub in SUBPACKAGES:
        assert rows[sub] == _job(sub), sub
