"""Every random stream of the toolkit: a named child of the one --seed.

A probe command, the same call from Python, the report's suite and a shard draw the same
numbers for the same seed because all take their generator from here (`probe_generator`: the
one rule for which stream a probe family draws from); the names keep the streams apart (the
bootstrap never reuses the ablation's permutations).
"""

from __future__ import annotations

import numpy as np

# Stream name -> the salt appended to the seed (the values the saved results were made with).
STREAMS = {"probe": 0xAB1A, "shared": 0x5AED, "paths": 0x9A75, "bootstrap": 0xB007,
           "bootstrap_t": 0xB7E5}
# Probe family -> its stream; every other family (ablation, attribution, the checks) "probe".
FAMILY_STREAMS = {"shared": "shared", "paths": "paths"}


def sequence(seed: int | None, stream: str) -> np.random.SeedSequence:
    """The SeedSequence of `stream` under `seed` (None counts as 0)."""
    if stream not in STREAMS:
        raise ValueError(f"Expected a stream in {sorted(STREAMS)}; received {stream!r}")
    return np.random.SeedSequence([int(seed or 0), STREAMS[stream]])


def generator(seed: int | None, stream: str) -> np.random.Generator:
    """A fresh generator of `stream` under `seed`."""
    return np.random.default_rng(sequence(seed, stream))


def probe_generator(probe: str, seed: int | None) -> np.random.Generator:
    """The generator registered probe `probe` ("family/method") runs with under `seed`."""
    return generator(seed, FAMILY_STREAMS.get(probe.split("/")[0], "probe"))
