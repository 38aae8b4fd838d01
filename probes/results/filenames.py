"""The one place result file names are made: every writer and reader asks here.

A results folder (a run's probes/, or `<report>-results/probes/` for a user's model) holds, per
probe, `<stem>.json` + `<stem>.npz` with stem "<family>-<method>-n<N>-seed<S>" (e.g.
"ablation-shuffle-n256-seed0", "shared-coupling-n256-seed0"), "structure" (no samples),
"skipped-n<N>-seed<S>.json" (probes that do not apply to the model, with the reason and the
fingerprint they were judged on), "timings.json" and the store's "manifest.json". Shard K of N
of a per-sample probe (`--shard K/N`) is saved as "<stem>-shard<K>of<N>" until `probe merge`
writes "<stem>".
"""

from __future__ import annotations

import re

TIMINGS = "timings.json"


def stem(probe: str, samples: int | None = None, seed: int | None = None,
         shard: tuple[int, int] | None = None) -> str:
    """The file stem of a registered probe's result ("ablation/shuffle" -> "ablation-shuffle-
    n256-seed0"; shard (2, 4) of it: "...-seed0-shard2of4"); the structure has no samples or
    seed."""
    base = probe.replace("/", "-")
    base = base if samples is None else f"{base}-n{samples}-seed{seed}"
    return base if shard is None else f"{base}-shard{shard[0]}of{shard[1]}"


SHARD = re.compile(r"^(?P<stem>.+)-shard(?P<k>\d+)of(?P<n>\d+)$")  # a shard's stem


def unsharded(stem_: str) -> str | None:
    """The stem of the whole run that a shard's file stem belongs to, or None if it is not a
    shard's."""
    match = SHARD.match(stem_)
    return match["stem"] if match else None


def skipped(samples: int, seed: int) -> str:
    """The file of the probes that did not apply, for this sample count and seed."""
    return f"skipped-n{samples}-seed{seed}.json"
