"""Dependency contracts in a TOML file, for `probe check` and CI.

    [model]
    path = "model.keras"        # relative to this file; or variant = "separate"; or run = "DIR"
    data = "data.npz"           # with path: one array per input (and per head: labels)
    custom_modules = []         # as --custom-module; unsafe = false as --unsafe

    [settings]                  # all optional: probes.testing.DEFAULTS
    method = "ablation/shuffle"
    samples = 256
    seed = 0
    delta = 0.05
    alpha = 0.05

    [heads.head_1]
    depends = ["tweet_a"]
    independent = ["tweet_b"]
    no_path = ["tweet_b"]

Python's `tomllib` reads it; a malformed contract is a ValueError naming the problem.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from probes.testing import CLAUSES, DEFAULTS, check_method

MODEL_KEYS = ("path", "data", "variant", "corpus", "run", "custom_modules", "unsafe")


@dataclasses.dataclass(frozen=True)
class Contract:
    """A parsed contract: where the model comes from, the settings, the clauses.

    Attributes:
        path: the contract file.
        model: the [model] table, file paths resolved against the contract's folder.
        settings: DEFAULTS overridden by [settings].
        expected: {head: {input: [clause, ...]}} in file order.
    """

    path: Path
    model: dict
    settings: dict
    expected: dict

    @property
    def structural_only(self) -> bool:
        """Only no_path clauses: the graph decides, no data is read and nothing runs."""
        return all(c == "no_path" for row in self.expected.values() for cs in row.values()
                   for c in cs)


def load(path) -> Contract:
    """Reads and checks a contract file; ValueError("Expected ...; received ...") if bad."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"Expected a readable contract file; received {str(path)!r}: "
                         f"{err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"Expected a TOML contract in {str(path)!r}; received a syntax "
                         f"error: {err}") from None
    unknown = sorted(set(doc) - {"model", "settings", "heads"})
    if unknown:
        raise ValueError(f"Expected the tables [model], [settings], [heads.<head>] in "
                         f"{str(path)!r}; received {unknown}")
    model = _model(doc.get("model"), path)
    settings = dict(DEFAULTS)
    given = doc.get("settings", {})
    bad = sorted(set(given) - set(DEFAULTS)) if isinstance(given, dict) else ["settings"]
    if bad:
        raise ValueError(f"Expected [settings] keys among {sorted(DEFAULTS)} in "
                         f"{str(path)!r}; received {bad}")
    settings.update(given)
    try:
        check_method(settings["method"])
    except ValueError as err:
        raise ValueError(f"{err} (in [settings] of {str(path)!r})") from None
    heads = doc.get("heads")
    if not isinstance(heads, dict) or not heads:
        raise ValueError(f"Expected at least one [heads.<head>] table of clauses in "
                         f"{str(path)!r}; received none")
    expected = {}
    for head, table in heads.items():
        if not isinstance(table, dict) or not table:
            raise ValueError(f"Expected clauses ({', '.join(CLAUSES)}) under [heads.{head}] "
                             f"in {str(path)!r}; received {table!r}")
        row: dict[str, list[str]] = {}
        for clause, inputs in table.items():
            if clause not in CLAUSES:
                raise ValueError(f"Expected clauses among {list(CLAUSES)} under "
                                 f"[heads.{head}] in {str(path)!r}; received {clause!r}")
            if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                raise ValueError(f"Expected a list of input names for {head}.{clause} in "
                                 f"{str(path)!r}; received {inputs!r}")
            for name in inputs:
                row.setdefault(name, []).append(clause)
        expected[head] = row
    return Contract(path=path, model=model, settings=settings, expected=expected)


def _model(table, path: Path) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"Expected a [model] table (path and data, variant, or run) in "
                         f"{str(path)!r}; received none")
    bad = sorted(set(table) - set(MODEL_KEYS))
    chosen = [k for k in ("path", "variant", "run") if k in table]
    if bad or len(chosen) != 1:
        raise ValueError(f"Expected [model] with exactly one of path, variant, run (and "
                         f"data with path) in {str(path)!r}; received keys {sorted(table)}")
    if "corpus" in table and "variant" not in table:
        raise ValueError(f"Expected [model] corpus only beside variant in {str(path)!r}; "
                         f"received keys {sorted(table)}")
    if "path" in table and "data" not in table:
        raise ValueError(f"Expected [model] data = \"FILE.npz\" beside path in {str(path)!r}; "
                         "received none")
    out = dict(table)
    for key in ("path", "data", "run"):
        if key in out:
            out[key] = str((path.parent / out[key]).resolve())
    return out


def draft(expected_rows, model: dict, settings: dict) -> str:
    """A contract's text from measured cells, for the user to review and commit.

    Args:
        expected_rows: [(head, input, verdict, note)] in model order.
        model: the [model] table to write (paths as given).
        settings: the settings the cells were measured with.
    """
    lines = ["# Drafted by `probe check --write` from what was measured: review every clause,",
             "# then commit this file and run `probe check` on it in CI.", "", "[model]"]
    lines += [f"{k} = {_toml(v)}" for k, v in model.items() if v not in (None, [], False)]
    lines += ["", "[settings]"] + [f"{k} = {_toml(v)}" for k, v in settings.items()]
    heads: dict[str, dict[str, list]] = {}
    notes: dict[str, list[str]] = {}
    for head, name, verdict, note in expected_rows:
        row = heads.setdefault(head, {c: [] for c in CLAUSES})
        if verdict == "depends":
            row["depends"].append(name)
        elif verdict in ("zero", "negligible", "structural_zero"):
            row["independent"].append(name)
            if verdict == "structural_zero":
                row["no_path"].append(name)
        else:
            notes.setdefault(head, []).append(f"# {name}: {verdict} ({note}): no clause")
    for head, row in heads.items():
        lines += ["", f"[heads.{_key(head)}]"] + notes.get(head, [])
        lines += [f"{c} = {_toml(v)}" for c, v in row.items() if v]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _key(name: str) -> str:
    """A head name as a TOML key (quoted unless bare)."""
    return name if name.replace("_", "").replace("-", "").isalnum() else _toml(name)
