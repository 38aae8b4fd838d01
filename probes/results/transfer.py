"""What sharing weights is worth: the result of `probe sharing` and its statistics.

Three arms are trained at every training-set size and seed (mtl_models/sharing.py): `tied`
(one shared encoder, both tasks), `untied` (one encoder per input, both tasks) and `single`
(the tied model with the other head's loss weight at 0). Within a size and seed the arms share
the world, the training pairs, the held-out pairs and the initial weights of the common layers,
so the transfer of a head, e.g. tied minus single, is a paired difference per seed. Its interval
is Student's t over seeds (Caruana 1997 measured multi-task transfer the same way: the same
network trained with and without the extra tasks, over several seeds).

Only per-run accuracies are stored; means, intervals and the generated sentences are derived.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from probes.results import atomic
from probes.results.protocol import Interval, Result
from probes.results.stats import t_interval

ARMS = ("tied", "untied", "single")
# Transfer name -> (arm, arm it is compared with).
TRANSFERS = {"tied - single": ("tied", "single"), "tied - untied": ("tied", "untied")}
REFERENCE_SOURCES = ("neither", "tweet_a", "tweet_b", "both")
FILENAME = "sharing.json"
SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class SharingResult(Result):
    """Held-out accuracies of every arm, head, training-set size and seed.

    Attributes:
        variant: the tied variant ("separate" or "concat").
        tasks: task of each head.
        heads: head names, in model order.
        sizes: (S,) training pairs per run.
        seeds: (R,) training seeds.
        accuracy: arm -> (H, S, R) held-out accuracy of each head (in the `single` arm, head h
            comes from the run that trains head h alone).
        reference: source -> (H, S, R) the Bayes-optimal accuracy from what the source may
            read, on the same held-out pairs.
        cosine: (S, R) lists of [step, cosine] of the two tasks' gradients on the shared weights
            during tied training (empty where no monitor ran).
        labelled: per head, the cap on labelled training pairs (None = all).
        runs: one entry per trained run: arm, head (single arm) , size, seed, path, seconds.
        params: the schedule and anything else that defines the runs.
    """

    variant: str
    tasks: tuple[str, ...]
    heads: tuple[str, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    accuracy: dict
    reference: dict
    cosine: list
    labelled: tuple
    runs: list
    params: dict

    def interval(self, head: str, arm: str, size: int) -> Interval:
        """Held-out accuracy of `head` in `arm` at `size` training pairs, over seeds."""
        return t_interval(self.accuracy[arm][self._h(head), self._s(size)])

    def transfer(self, head: str, kind: str, size: int) -> Interval:
        """Paired difference of accuracies (e.g. "tied - single") over seeds."""
        if kind not in TRANSFERS:
            raise ValueError(f"Expected a transfer in {list(TRANSFERS)}; received {kind!r}")
        a, b = TRANSFERS[kind]
        h, s = self._h(head), self._s(size)
        return t_interval(self.accuracy[a][h, s] - self.accuracy[b][h, s])

    def reference_mean(self, head: str, source: str, size: int) -> float:
        return float(np.mean(self.reference[source][self._h(head), self._s(size)]))

    def own_source(self, head: str) -> str:
        """The reference a head of this variant can reach: its own tweet in `separate`,
        both tweets otherwise."""
        if self.variant == "separate":
            return REFERENCE_SOURCES[1 + self._h(head)]
        return "both"

    def _h(self, head):
        if head not in self.heads:
            raise ValueError(f"Expected a head in {list(self.heads)}; received {head!r}")
        return self.heads.index(head)

    def _s(self, size):
        if size not in self.sizes:
            raise ValueError(f"Expected a size in {list(self.sizes)}; received {size!r}")
        return self.sizes.index(size)

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): one row per head and size with every arm's mean accuracy, the
        reference and both transfers with their intervals (in accuracy points)."""
        header = ["head", "task", "pairs", "tied", "untied", "single", "reference",
                  "tied - single", "tied - untied"]
        rows = []
        for h, head in enumerate(self.heads):
            for size in self.sizes:
                rows.append([head, self.tasks[h], size]
                            + [f"{self.interval(head, arm, size).mean:.3f}" for arm in ARMS]
                            + [f"{self.reference_mean(head, self.own_source(head), size):.3f}"]
                            + [self.transfer(head, kind, size).text() for kind in TRANSFERS])
        return header, rows

    def table(self) -> str:
        """The arms and transfers, then a sentence per head and size (`probe sharing`)."""
        from probes.results.text import table

        return "\n".join(
            [f"{self.variant} vs {self.variant}_untied vs single task; held-out accuracy (mean "
             f"of {len(self.seeds)} seeds), transfers in accuracy points [95% t interval]; "
             "reference = Bayes-optimal from the head's own input(s)",
             table(*self.table_rows(), align="llrrrrrrr"), "", *self.sentences()])

    def sentences(self) -> list[str]:
        """One sentence per head and size, generated from the numbers."""
        out = []
        for head in self.heads:
            for size in self.sizes:
                joint = self.transfer(head, "tied - single", size)
                tied = self.transfer(head, "tied - untied", size)
                out.append(f"At {size} training pairs, sharing the encoder with the other task "
                           f"changed {head}'s held-out accuracy ({self.task(head)}) by "
                           f"{joint.text()} against training it alone ({_verdict(joint)}), and "
                           f"by {tied.text()} against one encoder per tweet "
                           f"({_verdict(tied)}; {len(self.seeds)} seeds, 95% t intervals).")
        return out

    def task(self, head: str) -> str:
        return self.tasks[self._h(head)]

    def to_json(self) -> dict:
        return {"kind": "sharing", "schema": SCHEMA, "variant": self.variant,
                "tasks": list(self.tasks), "heads": list(self.heads), "sizes": list(self.sizes),
                "seeds": list(self.seeds),
                "accuracy": {a: np.asarray(v).tolist() for a, v in self.accuracy.items()},
                "reference": {s: np.asarray(v).tolist() for s, v in self.reference.items()},
                "cosine": self.cosine, "labelled": list(self.labelled), "runs": self.runs,
                "params": self.params}

    @classmethod
    def from_json(cls, blob: dict) -> "SharingResult":
        try:
            if blob["kind"] != "sharing" or blob["schema"] != SCHEMA:
                raise ValueError(f"kind {blob['kind']!r}, schema {blob['schema']!r}")
            heads, sizes, seeds = blob["heads"], blob["sizes"], blob["seeds"]
            shape = (len(heads), len(sizes), len(seeds))
            arrays = {}
            for part in ("accuracy", "reference"):
                arrays[part] = {k: np.asarray(v, np.float64) for k, v in blob[part].items()}
                for k, v in arrays[part].items():
                    if v.shape != shape:
                        raise ValueError(f"{part}[{k!r}] of shape {v.shape}, not {shape}")
            missing = set(ARMS) - set(arrays["accuracy"])
            if missing:
                raise ValueError(f"no accuracy for arm(s) {sorted(missing)}")
            return cls(variant=blob["variant"], tasks=tuple(blob["tasks"]), heads=tuple(heads),
                       sizes=tuple(sizes), seeds=tuple(seeds), accuracy=arrays["accuracy"],
                       reference=arrays["reference"], cosine=blob["cosine"],
                       labelled=tuple(blob["labelled"]), runs=blob["runs"],
                       params=blob["params"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Expected a probe sharing result; received {err}") from None

    def summary(self) -> dict:
        """{head: {size: {transfer: Interval}}}: each transfer's mean over seeds with its t
        interval, in accuracy (not points)."""
        return {head: {size: {kind: self.transfer(head, kind, size) for kind in TRANSFERS}
                       for size in self.sizes} for head in self.heads}

    def save(self, directory, stem: str | None = None, *, fingerprint: dict | None = None
             ) -> Path:
        """Writes `<stem>.json` (default sharing.json; one JSON file, no arrays to keep apart)
        in `directory`; `probes.load` reads it back. `fingerprint` is not used: a sweep is
        identified by the runs it lists."""
        path = Path(directory) / (f"{stem}.json" if stem else FILENAME)
        atomic.write_json(path, self.to_json())
        return path


def load(path) -> SharingResult:
    """Reads sharing.json (or the folder holding it); a malformed file is an error."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    try:
        blob = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Expected a readable {FILENAME} at {path}; received "
                         f"{type(err).__name__}: {err}") from None
    return SharingResult.from_json(blob)


def _verdict(interval: Interval) -> str:
    if not np.isfinite(interval.low):
        return "no interval from one seed"
    if interval.low > 0:
        return "sharing helps"
    if interval.high < 0:
        return "sharing hurts"
    return "no clear difference"
