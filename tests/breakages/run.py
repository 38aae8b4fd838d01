"""Applies each deliberate breakage (tests/breakages/*.patch) to a copy of the checkout and runs
the default test set on it: every breakage must make a test fail (tests/README.md).

    python tests/breakages/run.py                 # every patch; minutes each at most
    python tests/breakages/run.py 03 11           # the patches whose names start so
    python tests/breakages/run.py -- -m slow      # pytest arguments after --

Each copy is a `git worktree` of HEAD with the working tree's changes to tests/ (so a new test is
tried before it is committed), removed afterwards. pytest runs in the copy with `python -m
pytest` (the copy's packages come first on sys.path) and stops at the first failure. Prints one
line per patch: caught (and by which test), NOT CAUGHT, or does not apply; exits 1 if any
breakage went uncaught or did not apply.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _git(*args, cwd=ROOT, check=True, **kw):
    return subprocess.run(["git", *args], cwd=cwd, check=check, text=True,
                          capture_output=True, **kw)


def _try(patch: Path, pytest_args: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="breakage-") as tmp:
        copy = Path(tmp) / "copy"
        _git("worktree", "add", "--detach", str(copy), "HEAD")
        try:
            tests = _git("diff", "HEAD", "--binary", "--", "tests").stdout
            if tests:
                _git("apply", "-", cwd=copy, input=tests)
            if _git("apply", str(patch), cwd=copy, check=False).returncode != 0:
                return "does not apply (the code it breaks has changed: write it again)"
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-rf", "-p",
                                  "no:cacheprovider", *pytest_args], cwd=copy, text=True,
                                 capture_output=True)
            failed = re.findall(r"^FAILED (\S+)", run.stdout, re.M)
            if failed:  # exit 1, or 2 where -x stops the workers of pytest-xdist
                return f"caught by {failed[0]}"
            if run.returncode == 0:
                return "NOT CAUGHT: every test passed"
            return f"NOT CAUGHT: pytest exit {run.returncode} ({run.stdout.strip()[-200:]})"
        finally:
            _git("worktree", "remove", "--force", str(copy), check=False)


def main(argv: list[str]) -> int:
    names, pytest_args = argv, []
    if "--" in argv:
        at = argv.index("--")
        names, pytest_args = argv[:at], argv[at + 1:]
    patches = [p for p in sorted(HERE.glob("*.patch"))
               if not names or any(p.name.startswith(n) for n in names)]
    if not patches:
        print(f"no patch in {HERE} starts with {names}", file=sys.stderr)
        return 2
    bad = 0
    for patch in patches:
        started = time.perf_counter()
        verdict = _try(patch, pytest_args)
        bad += not verdict.startswith("caught")
        print(f"{patch.stem:40s} {verdict} ({time.perf_counter() - started:.0f} s)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
