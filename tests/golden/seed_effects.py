"""Writes tests/golden/seed_effects.npz: the per-sample effects of the seed's full-size report
(`probe report`: both variants, 256 held-out pairs, seed 0), the ablations and gradient
attributions its pages decide from, so that the decision rule's answer on them is a fast test
(tests/test_stats.py) rather than a ten-minute run.

    python -m tests.golden.seed_effects RUNS_DIR

RUNS_DIR: the mtl-probe cache's `runs` folder after `probe report` (for example
~/.cache/mtl-probe/runs); recorded from CI's main job on 2026-12-04.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from probes.results.result import load

PROBES = ("ablation-shuffle", "ablation-zero", "ablation-occlusion",
          "attribution-integrated_gradients", "attribution-saliency")
OUT = Path(__file__).with_name("seed_effects.npz")


def main(runs: str) -> None:
    arrays = {}
    for variant in ("concat", "separate"):
        (run,) = Path(runs).glob(f"{variant}-*")
        for probe in PROBES:
            r = load(run / "probes" / f"{probe}-n256-seed0.json")
            arrays[f"{variant}/{probe}/effects"] = r.effects
            arrays[f"{variant}/{probe}/structural"] = r.structural
    np.savez_compressed(OUT, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
