"""Saved results of one model ("subject"), read back from its directory. No TensorFlow here.

A subject directory is a run directory written by `probe train` (manifest.json, accuracy.json,
history.json, taskgrads.json) or a results directory for a user's model (subject.json); its
probes/ folder holds what the probe commands saved: <probe>-<method>-n<N>-seed<S>.json (+ .npz),
shared-n<N>-seed<S>.json, paths-n<N>-seed<S>.json, structure.json and timings.json.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from probes import result as presult
from probes import stats


@dataclasses.dataclass(frozen=True)
class Subject:
    """Everything the report shows about one model.

    Attributes:
        name: the variant name or the model file.
        results: registered probe name ("ablation/shuffle") -> (ProbeResult, Summary).
        shared, paths: the JSON records of `probe shared` and `probe paths`, or None.
        structure: the JSON of probes.graph.Structure.
        run: manifest, accuracy, history and taskgrads of a training run (None for a user's
            model).
        timings: what -> seconds, for the provenance page.
    """

    name: str
    path: Path
    results: dict
    shared: dict | None
    paths: dict | None
    structure: dict
    run: dict | None
    timings: dict

    @property
    def heads(self) -> list[str]:
        return self.structure["heads"]

    @property
    def inputs(self) -> list[str]:
        return self.structure["inputs"]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Expected a readable JSON file at {path}; received "
                         f"{type(err).__name__}: {err}") from None


def load_subject(path, probe_names, samples: int, seed: int) -> Subject:
    """Reads a subject directory; every probe in `probe_names` must have been saved for this
    sample count and seed (a missing or malformed file is an error, never skipped)."""
    path = Path(path)
    probes_dir = path / "probes"
    suffix = f"-n{samples}-seed{seed}.json"
    results = {}
    for name in probe_names:
        res = presult.load(probes_dir / (name.replace("/", "-") + suffix))
        results[name] = (res, stats.summarize(res))
    run = None
    if (path / "manifest.json").is_file():
        run = {k: _json(path / f"{k}.json") for k in ("manifest", "accuracy", "history")}
        grads = path / "taskgrads.json"
        run["taskgrads"] = _json(grads) if grads.is_file() else None
        name = run["manifest"]["arguments"]["variant"]
    else:
        name = _json(path / "subject.json")["name"]
    optional = {}
    for kind in ("shared", "paths"):
        file = probes_dir / f"{kind}-n{samples}-seed{seed}.json"
        optional[kind] = _json(file) if file.is_file() else None
    timings = probes_dir / "timings.json"
    return Subject(name=name, path=path, results=results, shared=optional["shared"],
                   paths=optional["paths"], structure=_json(probes_dir / "structure.json"),
                   run=run, timings=_json(timings) if timings.is_file() else {})
