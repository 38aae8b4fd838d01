"""The code blocks of README.md and docs/, collected and run (tests/test_docs_examples.py).

Every fenced block is one of:

- ```` ```python ```` and ```` ```bash ````: run, in order, page by page, in a fresh folder (the
  page's Python blocks share one namespace, as a reader's session would; a block's `test_*`
  functions without parameters are called after it runs). A bash block whose lines are plain
  `probe ...` or `python -m pytest ...` commands (no variables, pipes, `&` or redirection)
  runs in this process (click's CliRunner on `probes.cli.main`, `pytest.main`), globs expanded
  as the shell would; any other bash block runs in `bash -euo pipefail` with `probe` and
  `python` on PATH running this checkout's code.
- a block with a `title="NAME"` (```` ```toml title="contract.toml" ````, or a Python file): not
  run itself but written to NAME before the page's later blocks run, and a later block must
  use NAME (so a test file or a contract shown is run by the command that follows it).
- ```` ```text ````, ```` ```yaml ````, ```` ```json ````: shown only (output, a CI step, a
  file format); never run.

A comment on the line before a block's fence marks it:

- `<!-- docs: slow -->`: run only in the slow set (`python -m pytest -m slow`), with the
  page's other blocks;
- `<!-- docs: run by CI -->`: not run here because .ci/run runs it (installs, the full report);
  a test checks that these are exactly the commands .ci/run runs;
- `<!-- docs: subprocess -->`: run in bash even if it could run in this process (an option
  that must act before TensorFlow starts, such as `--devices N` on CPUs);
- `<!-- docs: not run: REASON -->`: never run, for a reason the page's reader can check (a
  cluster of machines, a GPU).

Marks combine, separated by commas (`<!-- docs: slow, subprocess -->`).

Any other block (no language, another language, an indented code block) is an error.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ("python", "bash")
SHOWN = ("text", "yaml", "json")
MARKS = ("slow", "run by CI", "subprocess", "not run")
_MARK = re.compile(r"^<!--\s*docs:\s*(.+?)\s*-->\s*$")
_TITLE = re.compile(r'title="([^"]+)"')
_SHELL_SYNTAX = re.compile(r"[$|&;<>()`]")  # what only a shell can run
_IN_PROCESS = (("probe",), ("python", "-m", "pytest"))


class ExampleError(AssertionError):
    """A block failed, or a page has a block of no known kind; names the page and line."""


@dataclasses.dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, from 1
    info: str  # the fence's info string
    code: str
    mark: str  # the comment's text before the fence (marks separated by ", "), or ""

    @property
    def lang(self) -> str:
        return self.info.split(maxsplit=1)[0] if self.info else ""

    @property
    def title(self) -> str | None:
        found = _TITLE.search(self.info)
        return found.group(1) if found else None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def marks(self) -> list[str]:
        if self.mark.startswith("not run"):  # the reason may have commas
            return [self.mark]
        return [m.strip() for m in self.mark.split(",")] if self.mark else []

    @property
    def kind(self) -> str:
        """'run', 'slow', 'file', 'shown', 'ci' or 'not run'."""
        for mark in self.marks:
            if mark == "not run":
                raise ExampleError(f"{self.where}: Expected `not run: REASON`; received no "
                                   "reason")
            if not (mark in MARKS or mark.startswith("not run: ")):
                raise ExampleError(f"{self.where}: Expected a mark in {list(MARKS)} (`not run: "
                                   f"REASON`); received {mark!r}")
        if self.title and self.lang not in SHOWN:
            return "file"
        if self.lang in SHOWN and not self.marks:
            return "shown"
        if self.lang not in RUN:
            raise ExampleError(f"{self.where}: Expected a block of {list(RUN + SHOWN)} or a "
                               f'`title="FILE"`; received {self.info or "no language"!r}')
        if any(m.startswith("not run") for m in self.marks):
            return "not run"
        if "run by CI" in self.marks:
            return "ci"
        return "slow" if "slow" in self.marks else "run"


def pages() -> list[Path]:
    """README.md and every Markdown page of docs/."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def blocks(text: str, page: str = "<text>") -> list[Block]:
    """The code blocks of a Markdown text, each with the mark of the comment before it."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    out, mark = [], ""
    for token in tokens:  # a mark is the html_block token right before the fence
        if token.type == "code_block":
            raise ExampleError(f"{page}:{token.map[0] + 1}: Expected fenced code blocks only; "
                               "received an indented one")
        if token.type == "fence":
            out.append(Block(page, token.map[0] + 1, token.info.strip(), token.content, mark))
        found = _MARK.match(token.content.strip()) if token.type == "html_block" else None
        mark = found.group(1) if found else ""
    return out


def page_blocks(path: Path) -> list[Block]:
    return blocks(path.read_text(), str(path.relative_to(ROOT)))


def _logical_lines(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks left out."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def in_process(block: Block) -> bool:
    """Whether a bash block is plain commands this process can run (see the module docstring)."""
    if "subprocess" in block.marks:
        return False
    for line in _logical_lines(block.code):
        words = shlex.split(line, comments=True)
        if _SHELL_SYNTAX.search(line) or not any(
                tuple(words[:len(start)]) == start for start in _IN_PROCESS):
            return False
    return True


def _expand(words: list[str]) -> list[str]:
    out = []
    for word in words:
        matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
        out.extend(matches or [word])
    return out


def _run_in_process(block: Block, env: dict) -> None:
    from click.testing import CliRunner

    from probes.cli import main

    for line in _logical_lines(block.code):
        words = _expand(shlex.split(line, comments=True))
        if words[0] == "probe":
            done = CliRunner().invoke(main, words[1:], env=env, prog_name="probe")
            sys.stdout.write(done.output)
            if done.exit_code != 0:
                raise ExampleError(f"{block.where}: `{line}` exited {done.exit_code}:\n"
                                   f"{done.output}") from done.exception
        else:
            status = _pytest_main(words[3:])
            if status != 0:
                raise ExampleError(f"{block.where}: `{line}` exited {int(status)}")


def _pytest_main(args: list[str]) -> int:
    """`python -m pytest ARGS` in this process, leaving no test module or path behind (a page's
    test file may have the name of another page's)."""
    import pytest

    modules, path = set(sys.modules), list(sys.path)
    try:
        return int(pytest.main(args + ["-p", "no:cacheprovider", "-p", "no:xdist",
                                  "-W", "ignore::pytest.PytestAssertRewriteWarning"]))
    finally:
        for name in set(sys.modules) - modules:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(os.getcwd()):
                del sys.modules[name]
        sys.path[:] = path


def _wrappers(folder: Path) -> Path:
    """A folder with `probe` and `python` running this checkout's code with this Python."""
    folder.mkdir(exist_ok=True)
    commands = {"python": f'exec "{sys.executable}" "$@"',
                "probe": f'exec "{sys.executable}" -c "import sys; from probes.cli import main; '
                         f"sys.exit(main(prog_name='probe'))\" \"$@\""}
    for name, line in commands.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{line}\n")
        path.chmod(0o755)
    return folder


def _run_bash(block: Block, folder: Path, env: dict, timeout: int) -> None:
    full = {**os.environ, **env,
            "PATH": f"{_wrappers(folder / '.bin')}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder, env=full,
                          capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        raise ExampleError(f"{block.where}: the block exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def run(page_blocks_: list[Block], folder: Path, *, slow: bool = False,
        timeout: int = 600) -> list[Block]:
    """Runs a page's blocks in order in `folder` (the current directory meanwhile) with the
    run cache in `folder/cache`; `slow` also runs the blocks marked slow. Returns the blocks
    run; raises ExampleError naming the first block that failed."""
    folder = Path(folder)
    env = {"MTL_PROBE_CACHE": str(folder / "cache"), "MPLBACKEND": "Agg"}
    namespace = {"__name__": "__docs__"}
    done = []
    before = os.getcwd()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    os.chdir(folder)
    try:
        for block in page_blocks_:
            kind = block.kind
            if kind == "file":
                (folder / block.title).write_text(block.code)
                later = page_blocks_[page_blocks_.index(block) + 1:]
                if not any(block.title in b.code for b in later if b.kind in ("run", "slow")):
                    raise ExampleError(f"{block.where}: Expected a later block to use "
                                       f"{block.title}; received none")
                continue
            if kind not in ("run", "slow") or (kind == "slow" and not slow):
                continue
            start = time.perf_counter()
            if block.lang == "python":
                _run_python(block, namespace)
            elif in_process(block):
                _run_in_process(block, env)
            else:
                _run_bash(block, folder, env, timeout)
            done.append(block)
            if os.environ.get("DOCS_EXAMPLES_TIMES"):  # where a page's seconds go
                sys.stderr.write(f"{block.where}: {time.perf_counter() - start:.1f} s\n")
    finally:
        os.chdir(before)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return done


def _run_python(block: Block, namespace: dict) -> None:
    before = set(namespace)
    try:
        exec(compile(textwrap.dedent(block.code), block.where, "exec"), namespace)
        for name in sorted(set(namespace) - before):
            test = namespace[name]
            if name.startswith("test_") and callable(test) and not test.__code__.co_argcount:
                test()
    except ExampleError:
        raise
    except BaseException as err:  # noqa: BLE001 (any failure of a block fails the page)
        raise ExampleError(f"{block.where}: {type(err).__name__}: {err}") from err
