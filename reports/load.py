"""Saved results of one model ("subject"), read back from its directory. No TensorFlow here.

A subject directory is a run directory written by `probe train` (manifest.json, accuracy.json,
history.json, taskgrads.json) or a results directory for a user's model (subject.json); its probes/
folder holds the saved results of the report's probes (probes.run.suite; file names from
probes.results.filenames): every one a result type of probes.results.resultio, and the record of
what could not run on this model and why. Only those saved types are read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from probes.results import filenames, resultio
from reports.layout import MAIN


@dataclasses.dataclass(frozen=True)
class Subject:
    """Everything the report shows about one model.

    Attributes:
        name: the variant name or the model file.
        results: registered probe name ("ablation/shuffle") -> (ProbeResult, Summary).
        shared, paths: the JSON records of `probe shared` and `probe paths`, or None.
        structure: the JSON of probes.model.graph.Structure.
        run: manifest, accuracy, history and taskgrads of a training run (None for a user's
            model).
        timings: what -> seconds, for the provenance page.
        skipped: probe name ("attribution/saliency", "shared", "paths") -> why it was not run
            on this model (a sentence); each page says so instead of showing it.
        texts: input name -> (N, T) character codes of the probed samples (PAD -1), for a run
            whose saved held-out pairs cover them; else None.
        trust: "faithfulness" and "sanity" -> the saved result, or None (not in the report's
            probes, or skipped with its reason).
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
    texts: dict | None = None
    trust: dict = dataclasses.field(default_factory=dict)

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
    skipped_file = probes_dir / filenames.skipped(samples, seed)
    skipped = ({k: v["reason"] for k, v in _json(skipped_file).items()}
               if skipped_file.is_file() else {})
    if MAIN in skipped or MAIN not in probe_names:
        raise ValueError(f"Expected a saved {MAIN} result in {probes_dir}; received none")

    def saved(probe):
        stem = filenames.stem(probe, None if probe == "structure" else samples, seed)
        return resultio.load(probes_dir / f"{stem}.json")

    results = {}
    for name in probe_names:
        if name in skipped or not name.startswith(("ablation/", "attribution/")):
            continue
        res = saved(name)
        results[name] = (res, res.summary())
    run = texts = None
    if (path / "manifest.json").is_file():
        texts = _texts(path / "heldout.npz", samples)
        run = {k: _json(path / f"{k}.json") for k in ("manifest", "accuracy", "history")}
        grads = path / "taskgrads.json"
        run["taskgrads"] = _json(grads) if grads.is_file() else None
        name = run["manifest"]["arguments"]["variant"]
    else:
        name = _json(path / "subject.json")["name"]
    shared = paths = None
    if not any(p in skipped for p in ("shared/agreement", "shared/coupling")):
        agree, couple = saved("shared/agreement"), saved("shared/coupling")
        shared = {"agreement": agree.to_json(), "coupling": couple.to_json(),
                  "samples": couple.params["samples"]}
    if "paths/decomposition" not in skipped:
        inter = None if "paths/interaction" in skipped else saved("paths/interaction")
        paths = {"decomposition": saved("paths/decomposition").to_json(),
                 "interaction": inter.to_json() if inter is not None else None}
    trust = {name: saved(name) if name in probe_names and name not in skipped else None
             for name in ("faithfulness", "sanity")}
    timings = probes_dir / filenames.TIMINGS
    return Subject(name=name, path=path, results=results, shared=shared, paths=paths,
                   structure=saved("structure").to_json(), run=run,
                   timings=_json(timings) if timings.is_file() else {}, skipped=skipped,
                   texts=texts, trust=trust)


def _texts(heldout: Path, samples: int) -> dict | None:
    """The probed held-out pairs' character codes, or None if the run saved fewer pairs."""
    import numpy as np

    from mtl_models.tweets import INPUTS_OF_SET

    try:
        with np.load(heldout, allow_pickle=False) as z:
            if len(z["codes_a"]) < samples:
                return None
            return {name: z[field][:samples] for name, field in INPUTS_OF_SET.items()}
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"Expected held-out pairs in {heldout}; received "
                         f"{type(err).__name__}: {err}") from None
