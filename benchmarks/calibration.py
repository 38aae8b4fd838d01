"""Calibration of the decision rule: how often `depends` and `negligible` are wrong at the
threshold share, and how often `depends` is right at twice the threshold (issue 16, item 4).

    python benchmarks/calibration.py [--datasets 300] [--seed 0]

The simulation. One head with four inputs: the tested input and three others. Every input's
per-sample effects are drawn independently from one distribution with mean 1, then the tested
input's are multiplied by `share` and each other input's by (1 - share) / 3, so the TRUE share
of the tested input, E[e] / E[t] with t the head's total, is exactly `share`. Distributions:
  exponential      mean 1;
  sparse           the input moves the head on 10% of the samples (exponential there, mean
                   10), exactly 0 elsewhere;
  lognormal 1.0    exp(sigma Z - sigma^2 / 2), sigma 1 (skewness 6);
  lognormal 1.5    sigma 1.5 (skewness 34: at n = 20 the top 5% of the distribution, about
                   one sample, carries 44% of the mean).
Four inputs rather than two: with two inputs of one distribution, d = e - delta t is exactly
symmetric at the threshold and the old t-test was already right; the other inputs' summed
effects are lighter-tailed than the tested input's, as in a head that mostly reads other
inputs, which is what skews d. A two-input table follows, and two stress designs outside the
acceptance grid: the tested input exponential with one sparse or log-normal other input
(the heavy tail is on the side that `depends` must guard against), and a sparse or
log-normal tested input with three exponential others.

Rates per (distribution, n), each over `--datasets` seeded data sets per share:
  test     uncorrected p < alpha for the tested cell: the level of each one-sided test, which
           is what Holm's family-wise guarantee rests on. The acceptance criterion.
  verdict  the tested cell's verdict from `summarize` (Holm over the head's tested cells). At
           the threshold the other three cells clearly depend, so Holm leaves the tested
           cell's `depends` p-value as it is but multiplies its `negligible` p-value by the
           number of tested cells (4): the verdict's `negligible` rate is that of a test at
           alpha / 4. Data sets where the tested input never moves the head are `zero`
           (sparse, n = 20: 0.9^20 = 12%), which is neither verdict.
before = the rule up to this change (a one-sided paired t-test on d, kept verbatim below as
`paired_t_test`); after = probes.results.stats as it is now (`share_p_values`, `summarize`).
Simulation error: the binomial standard error of a rate p over R data sets is
sqrt(p (1 - p) / R): 1.26 points at 5% with R = 300, 0.49 with R = 2000.
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np
from scipy.special import stdtr

from probes.results.result import ProbeResult
from probes.results.stats import holm, share_p_values, summarize
from probes.results.text import table

DISTRIBUTIONS = ("exponential", "sparse", "lognormal 1.0", "lognormal 1.5")
SIZES = (20, 50, 256)
SHARES = (0.05, 0.10)  # the threshold, and twice it for power
ALPHA = DELTA = 0.05
SPARSE_RATE = 0.1


def draw(name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Effects with mean exactly 1 in distribution (see the module docstring)."""
    if name == "exponential":
        return rng.exponential(1.0, shape)
    if name == "sparse":
        return (rng.random(shape) < SPARSE_RATE) * rng.exponential(1 / SPARSE_RATE, shape)
    if name.startswith("lognormal"):
        sigma = float(name.split()[1])
        return np.exp(sigma * rng.standard_normal(shape) - sigma ** 2 / 2)
    raise ValueError(f"Expected a distribution in {DISTRIBUTIONS}; received {name!r}")


def simulate(name: str, n: int, share: float, datasets: int, rng: np.random.Generator, *,
             others: int = 3, other: str | None = None) -> np.ndarray:
    """Effects (datasets, 1 + others, n) of one head per data set; input 0 is the tested one
    and its true share of the head's total is exactly `share`. `other`: the other inputs'
    distribution (default: the same as the tested input's)."""
    tested = draw(name, (datasets, 1, n), rng) * share
    rest = draw(other or name, (datasets, others, n), rng) * (1 - share) / others
    return np.concatenate([tested, rest], axis=1)


def as_result(effects: np.ndarray) -> ProbeResult:
    """A one-head ProbeResult of effects (I, N), every input with a path to the head."""
    i, n = effects.shape
    return ProbeResult(probe="ablation", method="simulated", model="calibration",
                       heads=("head",), inputs=tuple(f"x{k}" for k in range(i)),
                       effects=effects[None], structural=np.ones((1, i), bool),
                       sample_ids=np.arange(n), params={"seed": 0})


def paired_t_test(effects: np.ndarray, delta: float = DELTA) -> tuple[np.ndarray, np.ndarray]:
    """The rule before this change: uncorrected one-sided paired t-tests of d = e - delta t.

    Args: effects (..., I, N). Returns (p_depends, p_negligible), each (..., I); NaN where the
    effects or d are all zero (untested); a constant d decides by its sign.
    """
    d = effects - delta * effects.sum(axis=-2, keepdims=True)
    n = d.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=-1) / (d.std(axis=-1, ddof=1) / np.sqrt(n))
    p_dep, p_neg = stdtr(n - 1, -t), stdtr(n - 1, t)
    constant = np.all(d == d[..., :1], axis=-1)
    p_dep = np.where(constant, np.where(d[..., 0] > 0, 0.0, 1.0), p_dep)
    p_neg = np.where(constant, np.where(d[..., 0] > 0, 1.0, 0.0), p_neg)
    untested = ~np.any(d != 0, axis=-1) | ~np.any(effects != 0, axis=-1)
    return np.where(untested, np.nan, p_dep), np.where(untested, np.nan, p_neg)


def verdicts_before(effects: np.ndarray) -> np.ndarray:
    """The old summarize's verdict of cell 0 per data set: Holm over the head's cells."""
    p_dep, p_neg = paired_t_test(effects)
    out = []
    for dep, neg, e in zip(p_dep, p_neg, effects):
        dep, neg = holm(dep), holm(neg)
        out.append("zero" if not np.any(e[0]) else "depends" if dep[0] < ALPHA
                   else "negligible" if neg[0] < ALPHA else "inconclusive")
    return np.array(out)


def verdicts_after(effects: np.ndarray) -> np.ndarray:
    """`summarize`'s verdict of cell 0 per data set (its verdicts do not depend on n_boot)."""
    return np.array([summarize(as_result(e), n_boot=20, alpha=ALPHA, delta=DELTA).verdict[0, 0]
                     for e in effects])


def rates(name: str, n: int, *, datasets: int, seed: int = 0, others: int = 3,
          other: str | None = None, verdicts: bool = True) -> dict:
    """Rates of one cell of the table: {(rule, level, what): rate}, rule 'before'/'after',
    level 'test'/'verdict', what 'depends_05', 'negligible_05', 'zero_05', 'depends_10'."""
    key = [seed, zlib.crc32(f"{name}/{other}/{others}".encode()), n]
    out = {}
    for s, share in enumerate(SHARES):
        e = simulate(name, n, share, datasets, np.random.default_rng(key + [s]),
                     others=others, other=other)
        tag = f"{round(100 * share):02d}"
        for rule, tests in (("before", paired_t_test), ("after", share_p_values)):
            p_dep, p_neg = tests(e, DELTA)
            out[rule, "test", "depends_" + tag] = np.mean(p_dep[:, 0] < ALPHA)
            out[rule, "test", "negligible_" + tag] = np.mean(p_neg[:, 0] < ALPHA)
            if verdicts:
                v = (verdicts_before if rule == "before" else verdicts_after)(e)
                for what in ("depends", "negligible", "zero"):
                    out[rule, "verdict", f"{what}_{tag}"] = np.mean(v == what)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def grid_table(cells: dict, level: str) -> str:
    """Before -> after, in percent, per (design, distribution, n)."""
    rows = []
    for (label, name, n), r in cells.items():
        row = [label, name, n]
        for what in ("depends_05", "negligible_05", "depends_10"):
            row.append(f"{_pct(r['before', level, what])} -> {_pct(r['after', level, what])}")
        if level == "verdict":
            row.append(f"{_pct(r['before', level, 'zero_05'])}")
        rows.append(row)
    header = ["design", "distribution", "n", "depends @0.05 %", "negligible @0.05 %",
              "depends @0.10 %"] + (["zero @0.05 %"] if level == "verdict" else [])
    return table(header, rows, align="llr" + "r" * (len(header) - 3))


DESIGNS = (  # (label, distributions, others, other inputs' distribution)
    ("four inputs", DISTRIBUTIONS, 3, None),
    ("two inputs", DISTRIBUTIONS, 1, None),
    ("exp + 1 other", ("sparse", "lognormal 1.0", "lognormal 1.5"), 1, "exponential"),
    ("3 exp others", ("sparse", "lognormal 1.0", "lognormal 1.5"), 3, "exponential"),
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=300, help="data sets per share")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verdicts", action="store_true",
                        help="test level only (skips the per-data-set summarize calls)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cells = {}
    for label, names, others, other in DESIGNS:
        for name in names:
            for n in SIZES:
                # "exp + 1 other": the tested input is exponential and the other one `name`.
                tested, rest = ("exponential", name) if label == "exp + 1 other" else (name, other)
                cells[label, name, n] = rates(tested, n, datasets=args.datasets, seed=args.seed,
                                              others=others, other=rest,
                                              verdicts=not args.no_verdicts)
    se = np.sqrt(0.05 * 0.95 / args.datasets)
    print(f"{args.datasets} data sets per share and cell, seed {args.seed}; binomial SE at 5%: "
          f"{100 * se:.2f} points (5% + 2 SE = {100 * (0.05 + 2 * se):.1f}%)\n")
    print("Level of each one-sided test (uncorrected p < 0.05 for the tested cell), "
          "before -> after:")
    print(grid_table(cells, "test"))
    if not args.no_verdicts:
        print("\nVerdict of the tested cell from summarize (Holm over the head's cells), "
              "before -> after; zero: the tested input never moved the head:")
        print(grid_table(cells, "verdict"))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
