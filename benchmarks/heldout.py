"""Error rates and power of the decision rule on the tuning and held-out grids (issue 28;
benchmarks/grids.py gives the designs).

    python -m benchmarks.heldout [--grid tuning|held-out|held-out-2|...|held-out-5]
                                 [--datasets 1000] [--seed 0]

For each design, n and true share (0.05, the threshold; 0.10 and 0.20 for power) the tested
cell's verdict over `--datasets` seeded data sets, as `summarize` gives it: Holm over the
head's cells, `too_few_samples` below MIN_SAMPLES, `zero` where the tested input never moved
the head, `inconclusive` where the tail diagnostics refuse a claim. Rates:
  depends @0.05, negligible @0.05   wrong claims at the threshold share (both must be <= 5%);
  depends @0.10, depends @0.20      power.
The binomial standard error of a rate p over R data sets is sqrt(p (1 - p) / R): 0.69 points
at 5% with R = 1000.
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np

from benchmarks import grids
from probes.results import stats
from probes.results.text import table

ALPHA = DELTA = 0.05


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis, row by row (NaN left out, stays NaN)."""
    return np.stack([stats.holm(row) for row in p.reshape(-1, p.shape[-1])]).reshape(p.shape)


def verdicts(effects: np.ndarray) -> np.ndarray:
    """The tested cell's (input 0's) verdict per data set, as `summarize` gives it for a
    one-head result of each data set's effects (D, I, N) -> (D,)."""
    d, i, n = effects.shape
    if n < stats.MIN_SAMPLES:
        out = np.full(d, "too_few_samples", dtype=object)
    else:
        v = stats.cell_verdicts(effects, DELTA, ALPHA)  # (D, I)
        out = v[:, 0].astype(object)
    out[~np.any(effects[:, 0] != 0, axis=-1)] = "zero"
    return out.astype(str)


def rates(design: tuple, n: int, *, datasets: int, seed: int = 0) -> dict:
    """{(what, share): rate} for one design and n, what in depends/negligible/inconclusive."""
    out = {}
    for s, share in enumerate(grids.SHARES):
        rng = np.random.default_rng([seed, zlib.crc32(design[0].encode()), n, s])
        v = verdicts(grids.simulate(design, n, share, datasets, rng))
        for what in ("depends", "negligible", "inconclusive"):
            out[what, share] = float(np.mean(v == what))
    return out


def measure(grid: str, datasets: int, seed: int = 0) -> dict:
    """{(label, n): rates} over a whole grid ('tuning' or 'held-out' to 'held-out-5': all
    but the last held-out grid are spent, benchmarks/grids.py)."""
    designs, sizes = grids.GRIDS[grid]
    return {(d[0], n): rates(d, n, datasets=datasets, seed=seed)
            for d in designs for n in sizes}


def report(cells: dict, datasets: int) -> str:
    """The table per (design, n), then the worst rate of each wrong claim."""
    rows = [[label, n] + [f"{100 * r[key]:5.1f}" for key in
                          (("depends", 0.05), ("negligible", 0.05), ("depends", 0.10),
                           ("depends", 0.20), ("inconclusive", 0.05))]
            for (label, n), r in cells.items()]
    lines = [table(["design", "n", "depends @0.05 %", "negligible @0.05 %", "depends @0.10 %",
                    "depends @0.20 %", "inconclusive @0.05 %"], rows, align="lrrrrrr")]
    se = np.sqrt(0.05 * 0.95 / datasets)
    for what in ("depends", "negligible"):
        worst = max(cells, key=lambda c: cells[c][what, 0.05])
        lines.append(f"worst {what} at the threshold: {100 * cells[worst][what, 0.05]:.1f}% "
                     f"({worst[0]}, n = {worst[1]}); bound 5% + 2 SE = "
                     f"{100 * (0.05 + 2 * se):.1f}% over {datasets} data sets")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="tuning", choices=tuple(grids.GRIDS))
    parser.add_argument("--datasets", type=int, default=1000, help="data sets per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(report(measure(args.grid, args.datasets, args.seed), args.datasets))
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
