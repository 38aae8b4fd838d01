"""The result of the dependency probes (ablation and attribution), and its files.

Per-sample values over named axes (heads x inputs x samples); summaries (means, intervals,
p-values, verdicts) are derived from it by `probes.results.stats.summarize`, never stored in it. It
answers by name: `result.verdict("head_1", "tweet_b")`, `result.share(...)`, `print(result)`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from probes.results import resultio
from probes.results.protocol import Interval, Result


@resultio.register("probe")
@dataclasses.dataclass(frozen=True)
class ProbeResult(Result):
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
        maps: per input, (H, N, ...) signed attributions per element, summed over the feature
            axis of sequence inputs ((H, N, T): one value per time step or token), or None
            (attribution with maps=True only).
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
    maps: tuple | None = None

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
                              else self.completeness_gap[:, rows]),
            maps=None if self.maps is None else tuple(m[:, rows] for m in self.maps))

    @property
    def name(self) -> str:
        """File stem: probe and method, e.g. "ablation-shuffle"."""
        return f"{self.probe}-{self.method}"

    # Answers by name. The summary is derived (deterministic under the result's seed); the
    # default one is computed once per result object.
    def summary(self, **settings):
        """`probes.results.stats.summarize(self, **settings)` (n_boot, alpha, delta,
        confidence, seed); with the defaults, computed once."""
        if settings:
            from probes.results.stats import summarize

            return summarize(self, **settings)
        return self._default_summary

    @functools.cached_property
    def _default_summary(self):
        from probes.results.stats import summarize

        return summarize(self)

    def cell(self, head: str, input: str) -> tuple[int, int]:  # noqa: A002 (Keras' word)
        """(row, column) of a head and an input, by name; ValueError naming the choices."""
        if head not in self.heads:
            raise ValueError(f"Expected a head of {self.model} ({', '.join(self.heads)}); "
                             f"received {head!r}")
        if input not in self.inputs:
            raise ValueError(f"Expected an input of {self.model} ({', '.join(self.inputs)}); "
                             f"received {input!r}")
        return self.heads.index(head), self.inputs.index(input)

    def verdict(self, head: str, input: str) -> str:  # noqa: A002
        """The cell's verdict ("depends", "negligible", "zero", "structural_zero", ...)."""
        return str(self.summary().verdict[self.cell(head, input)])

    def share(self, head: str, input: str) -> float:  # noqa: A002
        """The input's share of the head's total effect (mean e / mean total)."""
        return float(self.summary().share[self.cell(head, input)])

    def share_interval(self, head: str, input: str) -> Interval:  # noqa: A002
        """The share with its bootstrap interval."""
        h, i = self.cell(head, input)
        s = self.summary()
        return Interval(float(s.share[h, i]), float(s.share_ci_low[h, i]),
                        float(s.share_ci_high[h, i]))

    def interval(self, head: str, input: str) -> Interval:  # noqa: A002
        """The mean effect with its bootstrap interval."""
        h, i = self.cell(head, input)
        s = self.summary()
        return Interval(float(s.effect[h, i]), float(s.ci_low[h, i]), float(s.ci_high[h, i]))

    def effect(self, head: str, input: str) -> float:  # noqa: A002
        """The mean effect over samples."""
        return float(self.summary().effect[self.cell(head, input)])

    def matrix(self) -> dict[str, dict[str, str]]:
        """{head: {input: verdict}}."""
        v = self.summary().verdict
        return {h: {i: str(v[a, b]) for b, i in enumerate(self.inputs)}
                for a, h in enumerate(self.heads)}

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows) of the dependency matrix, a row per cell."""
        from probes.results.stats import matrix_rows

        return matrix_rows(self, self.summary())

    def table(self) -> str:
        """The dependency matrix as the command line prints it."""
        from probes.results.stats import format_table

        return format_table(self, self.summary())

    def to_json(self) -> dict:
        """The JSON contract of `probe ablate --json` / `probe attribute --json`."""
        from probes.results.stats import to_json

        return to_json(self, self.summary())

    @staticmethod
    def load(json_path) -> "ProbeResult":
        """The result saved at `json_path`."""
        return resultio.load(json_path, "probe")


def save(result: ProbeResult, directory, stem: str | None = None,
         fingerprint: dict | None = None):
    """Writes `<stem>.npz` (arrays) then `<stem>.json`, each atomically; returns the JSON path
    (the JSON names its .npz, so a reader opens the JSON first)."""
    return resultio.save(result, directory, stem, fingerprint=fingerprint)


def load(json_path) -> ProbeResult:
    """Reads a saved result; a missing or malformed file raises ValueError."""
    return resultio.load(json_path, "probe")
