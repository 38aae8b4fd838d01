"""The README's Python section runs as written."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_section() -> str:
    text = README.read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readme_python_section_runs_as_written(tmp_path, capsys):
    code = _python_section()
    assert "probes.ablate(" in code and "probes.load(" in code and "plot_shares" in code
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md (Python)", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert "structural_zero" in printed and "head_1" in printed
    assert (tmp_path / "shares.png").stat().st_size > 0
    assert (tmp_path / "results" / "ablation-shuffle.json").is_file()
