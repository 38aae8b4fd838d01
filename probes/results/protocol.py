"""The protocol every result type follows, its one interval type, and its verdict words.

Every result (`ProbeResult`, `Structure`, `Agreement`, `Coupling`, `Decomposition`,
`Interaction`, `Faithfulness`, `Sanity`, `SharingResult`) is a frozen dataclass of what was
measured, plus:

- `summary(**settings)`: what the result says, derived from its stored fields (never stored),
  deterministic; the statistics' settings (bootstrap resamples, level...) as keywords;
- `table_rows()`: the table as (header, rows); `table()`: the same as text, as the commands
  print it (`print(result)` prints it too);
- `to_json()`: a JSON-ready dict, the commands' `--json`;
- `save(directory, stem=None, *, fingerprint=None)`: JSON plus .npz, atomically; the path of
  the JSON, which `probes.load` reads back bit for bit;
- `verdict(head, input)` where the result has a cell per head and input (the checks take the
  method first: `verdict(method, head, input)`).

Intervals are `Interval(mean, low, high)` everywhere (it unpacks as a 3-tuple). A verdict is
one of VERDICTS, each with one meaning whatever the family.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from probes.results import resultio

# Every verdict word of every family, with its one meaning.
VERDICTS = {
    # a cell of a dependency matrix (ablation, attribution; probes.results.stats)
    "depends": "the input's share of the head's effect is significantly above the threshold",
    "negligible": "the share is significantly below the threshold",
    "zero": "every sample's effect is exactly 0.0 although the graph has a path",
    "structural_zero": "the graph has no path from the input to the head: nothing to measure",
    "path": "the graph has a path from the input to the head (the data decide)",
    "inconclusive": "the evidence is not enough for either claim",
    "too_few_samples": "fewer samples than the statistics need",
    "unreliable": "a gradient method whose numbers cannot be trusted here (its notes say why)",
    # an attribution method on a cell (probes.checks.sanity)
    "passes": "the check was passed",
    "fails": "the check was failed",
    "no_ranking": "a map constant over every sample's steps: nothing to rank",
    # a pair of inputs at a head (probes.methods.paths.interaction)
    "additive": "the head combines the two inputs additively (the contrast is float noise)",
    "interacts": "the head's logit is not a sum of a term per input",
}


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean with its interval (low and high nan where there is none); unpacks as
    `mean, low, high = interval`."""

    mean: float
    low: float
    high: float

    def __iter__(self):
        return iter((self.mean, self.low, self.high))

    def __getitem__(self, k):
        return (self.mean, self.low, self.high)[k]

    def text(self, scale: float = 100.0, unit: str = " points") -> str:
        if not np.isfinite(self.low):
            return f"{self.mean * scale:+.1f}{unit} [one seed: no interval]"
        return (f"{self.mean * scale:+.1f}{unit} "
                f"[{self.low * scale:+.1f}, {self.high * scale:+.1f}]")


class Result:
    """The methods every result type shares; each type gives summary, rows (or table) and
    to_json."""

    def summary(self, **settings):
        raise NotImplementedError

    def table_rows(self) -> tuple[list[str], list[list]]:
        raise NotImplementedError

    def table(self) -> str:
        from probes.results.text import table

        header, rows = self.table_rows()
        return table(header, rows)

    def to_json(self) -> dict:
        raise NotImplementedError

    def save(self, directory, stem: str | None = None, *, fingerprint: dict | None = None
             ) -> Path:
        """Writes `<stem>.npz` then `<stem>.json` in `directory`; returns the JSON path."""
        return resultio.save(self, directory, stem, fingerprint=fingerprint)

    def __str__(self) -> str:
        return self.table()
