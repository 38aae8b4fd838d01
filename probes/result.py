"""The one result type every probe returns, and its files.

Per-sample values over named axes (heads x inputs x samples); summaries (means, intervals,
p-values, verdicts) are derived from it by `probes.stats.summarize`, never stored in it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from mtl_models import atomic

SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Per-sample evidence of how much each head depends on each input.

    Attributes:
        probe: family, "ablation" or "attribution".
        method: the mode or method within the family ("shuffle", "integrated_gradients"...).
        model: identity of the model (a variant name or a file path).
        heads: (H,) output names, model order.
        inputs: (I,) input names, model order.
        effects: (H, I, N) float64, >= 0: how much head h moved when input i was ablated (or
            the attribution mass of input i), per sample.
        structural: (H, I) bool, a path from input i to head h exists in the graph.
        sample_ids: (N,) int, which samples of the data set the rows are.
        params: the probe's parameters, seed included (JSON-serialisable).
        loss_effects: (H, I, N) float64 change of each head's loss when input i is ablated
            (positive: the input helped), or None without labels.
        profile: (H, I, N, W) per-window effects (occlusion), or None.
        profile_starts: (W,) first time step of each window, or None.
        signed: (H, I, N) signed sum of attributions (integrated gradients), or None.
        completeness_gap: (H, N) relative completeness gap |sum of attributions - (f(x) -
            f(baseline))| / |f(x) - f(baseline)| (integrated gradients), or None.
    """

    probe: str
    method: str
    model: str
    heads: tuple[str, ...]
    inputs: tuple[str, ...]
    effects: np.ndarray
    structural: np.ndarray
    sample_ids: np.ndarray
    params: dict
    loss_effects: np.ndarray | None = None
    profile: np.ndarray | None = None
    profile_starts: np.ndarray | None = None
    signed: np.ndarray | None = None
    completeness_gap: np.ndarray | None = None

    def __post_init__(self):
        h, i = len(self.heads), len(self.inputs)
        n = len(self.sample_ids)
        if self.effects.shape != (h, i, n):
            raise ValueError(f"Expected effects of shape {(h, i, n)}; "
                             f"received {self.effects.shape}")
        if self.structural.shape != (h, i):
            raise ValueError(f"Expected structural of shape {(h, i)}; "
                             f"received {self.structural.shape}")

    @property
    def samples(self) -> int:
        return int(self.sample_ids.shape[0])

    @property
    def seed(self):
        return self.params.get("seed")

    def take(self, rows) -> "ProbeResult":
        """The same result restricted to some sample rows."""
        rows = np.asarray(rows)
        return dataclasses.replace(
            self, effects=self.effects[:, :, rows], sample_ids=self.sample_ids[rows],
            loss_effects=None if self.loss_effects is None else self.loss_effects[:, :, rows],
            profile=None if self.profile is None else self.profile[:, :, rows],
            signed=None if self.signed is None else self.signed[:, :, rows],
            completeness_gap=(None if self.completeness_gap is None
                              else self.completeness_gap[:, rows]))

    @property
    def name(self) -> str:
        """File stem: probe and method, e.g. "ablation-shuffle"."""
        return f"{self.probe}-{self.method}"


_ARRAYS = ("effects", "structural", "sample_ids", "loss_effects", "profile", "profile_starts",
           "signed", "completeness_gap")


def save(result: ProbeResult, directory, stem: str | None = None) -> Path:
    """Writes `<stem>.npz` (arrays) then `<stem>.json` (metadata), each atomically.

    Returns the JSON path; the JSON names its .npz, so a reader opens the JSON first.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or result.name
    arrays = {k: getattr(result, k) for k in _ARRAYS if getattr(result, k) is not None}
    atomic.write_npz(directory / f"{stem}.npz", **arrays)
    meta = {"schema": SCHEMA, "probe": result.probe, "method": result.method,
            "model": result.model, "heads": list(result.heads), "inputs": list(result.inputs),
            "params": result.params, "arrays": f"{stem}.npz", "samples": result.samples}
    return atomic.write_json(directory / f"{stem}.json", meta)


def load(json_path) -> ProbeResult:
    """Reads a saved result; a missing or malformed file raises ValueError."""
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
        if meta.get("schema") != SCHEMA:
            raise ValueError(f"schema {meta.get('schema')!r}")
        with np.load(json_path.parent / meta["arrays"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS if k in z.files}
        return ProbeResult(probe=meta["probe"], method=meta["method"], model=meta["model"],
                           heads=tuple(meta["heads"]), inputs=tuple(meta["inputs"]),
                           params=meta["params"], **arrays)
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Expected a probe result at {json_path}; "
                         f"received {type(err).__name__}: {err}") from None
