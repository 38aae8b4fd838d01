"""Every probe, by name. A probe is `probe(model, inputs, *, rng, **params) -> ProbeResult`."""

from __future__ import annotations

from functools import partial

from probes.ablation import MODES, ablate
from probes.attribution import METHODS, attribute

PROBES = {f"ablation/{mode}": partial(ablate, mode=mode) for mode in MODES}
PROBES.update({f"attribution/{method}": partial(attribute, method=method) for method in METHODS})
