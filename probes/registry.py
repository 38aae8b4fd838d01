"""Every probe, by name. A probe is `probe(model, inputs, *, rng, **params) -> ProbeResult`."""

from __future__ import annotations

from functools import partial

from probes.ablation import MODES, ablate

PROBES = {f"ablation/{mode}": partial(ablate, mode=mode) for mode in MODES}
