"""Every code block of README.md and docs/ runs (tests/docs_examples.py says how each kind of
block is run or marked), the blocks marked "run by CI" are what .ci/run runs, and a broken
example fails."""

import re
import subprocess

import pytest

from tests import docs_examples
from tests.docs_examples import ROOT, ExampleError, blocks, page_blocks, pages, run

PAGES = {str(p.relative_to(ROOT)): p for p in pages()}


def _kinds(page):
    return [b.kind for b in page_blocks(PAGES[page])]


def test_every_block_is_run_or_marked():
    """Every block of every page has a known kind (run, slow, a file, shown, run by CI, not run
    with a reason), and most of the runnable ones run in the default set."""
    kinds = [k for page in PAGES for k in _kinds(page)]  # raises ExampleError on an unknown one
    assert kinds.count("run") > kinds.count("slow") + kinds.count("not run"), kinds
    # Guard against passing trivially: the pages have examples, and the README its CI block.
    assert kinds.count("run") >= 20 and "ci" in _kinds("README.md")


@pytest.mark.parametrize("page", [p for p in PAGES if "run" in _kinds(p)])
def test_page_examples_run(page, tmp_path):
    ran = run(page_blocks(PAGES[page]), tmp_path)
    assert ran


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if "slow" in _kinds(p)])
def test_page_examples_run_with_the_slow_ones(page, tmp_path):
    ran = run(page_blocks(PAGES[page]), tmp_path, slow=True)
    assert any(b.kind == "slow" for b in ran)


def _ci_commands():
    """The README commands .ci/run runs: its own awk program over the README."""
    script = (ROOT / ".ci" / "run").read_text()
    (program,) = re.findall(r"awk '(.*?)' README\.md", script, flags=re.S)
    done = subprocess.run(["awk", program, "README.md"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout.splitlines(), script


def test_the_blocks_marked_run_by_ci_are_what_ci_runs():
    readme_commands, script = _ci_commands()
    assert len(readme_commands) == 2 and "probe report" in readme_commands[0]
    marked = [(b, line) for page in PAGES for b in page_blocks(PAGES[page]) if b.kind == "ci"
              for line in docs_examples._logical_lines(b.code)]
    # The README's first bash block is the one CI parses, and it is marked.
    first = next(b for b in page_blocks(PAGES["README.md"]) if b.lang == "bash")
    assert first.kind == "ci"
    assert docs_examples._logical_lines(first.code) == readme_commands
    for block, line in marked:  # each marked command: one of the README's two, or in .ci/run
        assert line in readme_commands or line in script, f"{block.where}: {line}"
    assert set(readme_commands) <= {line for _, line in marked}


BROKEN_PYTHON = """
# A page

```python
x = 1
```

```python
assert x == 2, "a deliberately broken example"
```
"""

BROKEN_SHELL = """
```bash
probe structure --model no-such-model.keras
```
"""


def test_a_broken_example_fails(tmp_path):
    with pytest.raises(ExampleError, match=r"<text>:8: AssertionError: a deliberately broken"):
        run(blocks(BROKEN_PYTHON), tmp_path)
    with pytest.raises(ExampleError, match=r"`probe structure --model no-such-model.keras` "
                                           r"exited 1"):
        run(blocks(BROKEN_SHELL), tmp_path)
    # Guard against passing trivially: the same page fixed runs.
    assert len(run(blocks(BROKEN_PYTHON.replace("x == 2", "x == 1")), tmp_path)) == 2


def test_a_broken_shell_block_fails_in_bash_too(tmp_path):
    page = "<!-- docs: subprocess -->\n```bash\necho ok\nfalse\n```\n"
    with pytest.raises(ExampleError, match=r"<text>:2: the block exited 1"):
        run(blocks(page), tmp_path)


@pytest.mark.parametrize("text, error", [
    ("```\nprobe --help\n```\n", "received 'no language'"),
    ("```console\n$ probe --help\n```\n", "received 'console'"),
    ("    probe --help\n", "Expected fenced code blocks only"),
    ("<!-- docs: not run -->\n```bash\nray start --head\n```\n", "received no reason"),
    ("<!-- docs: later -->\n```bash\nprobe --help\n```\n", "Expected a mark in"),
    ('```toml title="c.toml"\n[model]\n```\n', "Expected a later block to use c.toml"),
])
def test_an_unmarked_or_unused_block_is_an_error(text, error, tmp_path):
    with pytest.raises(ExampleError, match=re.escape(error)):
        run(blocks(text), tmp_path)
