"""The wheel holds the whole toolkit: every module under probes/, mtl_models/ and reports/.

A regular (non-editable) install is built from this wheel, so a subpackage missing from it is a
`probe` command that cannot start even though the editable install (and so the rest of the suite)
works.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("probes", "mtl_models", "reports")


def _source_modules() -> set[str]:
    return {str(path.relative_to(ROOT).as_posix()) for package in PACKAGES
            for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy so build/ and *.egg-info never land in the source tree.
    src = tmp_path_factory.mktemp("src") / "mtl-probe"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(out), str(src)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    (path,) = out.glob("mtl_probe-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_every_module_is_in_the_wheel(wheel_names):
    expected = _source_modules()
    # Guard against passing trivially: the subpackages the README's first command needs.
    assert {"probes/cli/__init__.py", "probes/methods/paths/__init__.py"} <= expected
    assert len(expected) >= 30
    missing = sorted(expected - wheel_names)
    assert not missing, f"modules missing from the wheel: {missing}"


@pytest.mark.slow
def test_the_wheel_holds_no_tests_or_benchmarks(wheel_names):
    tops = {name.split("/", 1)[0] for name in wheel_names if not name.endswith(".dist-info/")}
    tops = {top for top in tops if not top.endswith(".dist-info")}
    assert tops == set(PACKAGES)


@pytest.mark.slow
def test_the_console_script_names_a_module_in_the_wheel(wheel, wheel_names):
    (name,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(name).decode()
    (line,) = [l.strip() for l in text.splitlines() if l.strip().startswith("probe ")]
    module = line.split("=", 1)[1].strip().split(":")[0]
    assert module == "probes.cli"
    assert module.replace(".", "/") + "/__init__.py" in wheel_names
