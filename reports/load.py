"""Saved results of one model ("subject"), read back from its directory. No TensorFlow here.

A subject directory is a run directory written by `probe train` (manifest.json, accuracy.json,
history.json, taskgrads.json) or a results directory for a user's model (subject.json); its
probes/ folder holds what the probe commands saved: <probe>-<method>-n<N>-seed<S>.json (+ .npz),
shared-n<N>-seed<S>.json, paths-n<N>-seed<S>.json, structure.json and timings.json, and
`probe report`'s record of what it could not run on this model and why,
skipped-n<N>-seed<S>.json ({probe: the one-line reason}).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from probes import result as presult
from probes import stats
from reports.layout import MAIN


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
        skipped: probe name ("attribution/saliency", "shared", "paths") -> why it was not run
            on this model (a sentence); each page says so instead of showing it.
    """

    name: str
    path: Path
    results: dict
    shared: dict | None
    paths: dict | None
    structure: dict
    run: dict | None
    timings: dict
    skipped: dict = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short name for axes and legends: the variant, or the model file's name."""
        return self.name if self.run else Path(self.name).name

    @property
    def has_labels(self) -> bool:
        """Whether the data held labels for every head (the ablations measured loss changes)."""
        return self.results[MAIN][0].loss_effects is not None

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
    sample count and seed, or recorded as not applicable to the model in skipped-*.json (a
    missing or malformed file is an error, never skipped silently)."""
    path = Path(path)
    probes_dir = path / "probes"
    suffix = f"-n{samples}-seed{seed}.json"
    skipped_file = probes_dir / f"skipped{suffix}"
    skipped = _json(skipped_file) if skipped_file.is_file() else {}
    if MAIN in skipped or MAIN not in probe_names:
        raise ValueError(f"Expected a saved {MAIN} result in {probes_dir}; received none")
    results = {}
    for name in probe_names:
        if name in skipped:
            continue
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
                   run=run, timings=_json(timings) if timings.is_file() else {},
                   skipped=skipped)
