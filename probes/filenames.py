"""The one place result file names are made: every writer and reader asks here.

A results folder (a run's probes/, or `<report>-results/probes/` for a user's model) holds, per
probe, `<stem>.json` + `<stem>.npz` with stem "<family>-<method>-n<N>-seed<S>" (e.g.
"ablation-shuffle-n256-seed0", "shared-coupling-n256-seed0"), "structure" (no samples),
"skipped-n<N>-seed<S>.json" (probes that do not apply to the model, with the reason and the
fingerprint they were judged on), "timings.json" and the store's "manifest.json".
"""

from __future__ import annotations

TIMINGS = "timings.json"


def stem(probe: str, samples: int | None = None, seed: int | None = None) -> str:
    """The file stem of a registered probe's result ("ablation/shuffle" -> "ablation-shuffle-
    n256-seed0"); the structure has no samples or seed."""
    base = probe.replace("/", "-")
    return base if samples is None else f"{base}-n{samples}-seed{seed}"


def skipped(samples: int, seed: int) -> str:
    """The file of the probes that did not apply, for this sample count and seed."""
    return f"skipped-n{samples}-seed{seed}.json"
