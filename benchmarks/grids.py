"""The calibration grids of the decision rule (issue 28): a tuning grid, on which the rule and
its settings were chosen, and held-out grids, each evaluated once, on a fixed rule, and spent
(a tuning grid from then on) if the rule changed after it; the latest, HELD_OUT_5, is the one
the rule's numbers stand on. Each was committed before the rule it checks; none may change.

A design is one head: the tested input and its other inputs, each input's per-sample effects
drawn from a distribution with mean exactly 1, then the tested input's scaled by `share` and
the others' by (1 - share) / (number of others), so the TRUE share of the tested input,
E[e] / E[t] with t the head's total, is exactly `share`. Correlation across the inputs of a
head: a Gaussian copula with equicorrelation `rho` (one normal per input, sqrt(rho) of a
shared one), each input's effect the inverse CDF of its distribution at Phi(that normal); a
sparse input's occurrence follows the copula, its size is an independent exponential.

Distributions (mean 1; a Pareto of index a has tail exponent k = 1 / a, infinite variance
below a = 2):
  exponential, uniform (0 to 2), halfnormal, gamma K (shape K), weibull C (shape C),
  lognormal S (sigma S), pareto A (Pareto I of index A), sparse P (the input moves the head
  on a fraction P of samples, exponential with mean 1 / P there, exactly 0 elsewhere).

Between them the grids cover: different distributions across the inputs of one head,
Pareto tails of index 1.5 to 3, sparse effects, effects correlated across inputs, n from 10
to 1,000 and 2 to 8 inputs. The held-out grid's designs, sizes and distributions' parameters
differ from the tuning grid's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincinv, ndtr

# (label, tested input's distribution, other inputs' distributions, rho)
TUNING = (
    ("4 exponential", "exponential", ("exponential",) * 3, 0.0),
    ("4 sparse 0.1", "sparse 0.1", ("sparse 0.1",) * 3, 0.0),
    ("4 lognormal 1", "lognormal 1.0", ("lognormal 1.0",) * 3, 0.0),
    ("lognormal 1.5 among exp", "lognormal 1.5", ("exponential",) * 3, 0.0),
    ("exp beside sparse 0.1", "exponential", ("sparse 0.1",), 0.0),
    ("pareto 1.5 among exp", "pareto 1.5", ("exponential",) * 2, 0.0),
    ("exp among pareto 2", "exponential", ("pareto 2.0",) * 4, 0.0),
    ("correlated lognormal 1", "lognormal 1.0", ("lognormal 1.0",) * 3, 0.6),
    ("8 mixed", "gamma 0.5", ("exponential", "sparse 0.3", "lognormal 0.5", "uniform",
                             "pareto 2.5", "halfnormal", "exponential"), 0.0),
)
TUNING_SIZES = (10, 20, 50, 200, 1000)

HELD_OUT = (
    ("pareto 1.75 among mixed", "pareto 1.75", ("gamma 2.0", "lognormal 0.75"), 0.0),
    ("weibull beside pareto 1.5", "weibull 0.6", ("pareto 1.5",), 0.0),
    ("sparse 0.05 among gamma", "sparse 0.05", ("gamma 0.5",) * 2, 0.3),
    ("6 correlated pareto 2.5", "pareto 2.5", ("pareto 2.5",) * 5, 0.8),
    ("lognormal 1.25 among 7", "lognormal 1.25", ("halfnormal", "exponential", "sparse 0.2",
                                                  "pareto 3.0", "uniform", "weibull 0.8",
                                                  "gamma 1.5"), 0.3),
    ("halfnormal among sparse 0.3", "halfnormal", ("sparse 0.3",) * 3, 0.0),
    ("pareto 3 among exp, correlated", "pareto 3.0", ("exponential",) * 4, 0.5),
)
HELD_OUT_SIZES = (10, 30, 100, 300, 1000)

# The first held-out grid was evaluated once, on the first bootstrap-t rule (issue 28: `depends`
# in 7.7% of data sets for "weibull beside pareto 1.5"); from then on it is a tuning grid too,
# and this second held-out grid, committed before any further change to the rule, takes its
# place: designs, distributions' parameters and sizes seen by neither.
HELD_OUT_2 = (
    ("gamma 0.3 beside pareto 1.6", "gamma 0.3", ("pareto 1.6",), 0.0),
    ("pareto 1.6 among weibull 0.7", "pareto 1.6", ("weibull 0.7",) * 3, 0.0),
    ("sparse 0.08 beside lognormal 1.4", "sparse 0.08", ("lognormal 1.4",), 0.4),
    ("5 correlated gamma 0.7", "gamma 0.7", ("gamma 0.7",) * 4, 0.7),
    ("uniform among sparse 0.15", "uniform", ("sparse 0.15",) * 2, 0.0),
    ("lognormal 1.75 among exp", "lognormal 1.75", ("exponential",) * 2, 0.0),
    ("halfnormal among pareto 2.2", "halfnormal", ("pareto 2.2",) * 3, 0.3),
)
HELD_OUT_2_SIZES = (15, 40, 120, 400, 800)

# The second held-out grid was evaluated once, on the rule of three's copies with k-hat above
# 0.7 refusing every claim (worst: depends 2.9%, negligible 2.5%; issue 28); that refusal then
# turned away clear claims of small real models (a share of 0.5 `inconclusive` in 4% of
# random three-input models at 60 samples), so the rule changes once more and this third grid,
# committed before that change, takes the second's place: designs, tails (Pareto 1.3 and 1.4,
# beyond the others' 1.5), parameters and sizes seen by none.
HELD_OUT_3 = (
    ("exp among pareto 1.4", "exponential", ("pareto 1.4",) * 2, 0.0),
    ("pareto 1.3 beside gamma 2", "pareto 1.3", ("gamma 2.0",), 0.0),
    ("weibull 0.5 among lognormal 0.9", "weibull 0.5", ("lognormal 0.9",) * 3, 0.2),
    ("sparse 0.25 among correlated exp", "sparse 0.25", ("exponential",) * 5, 0.5),
    ("halfnormal beside pareto 1.8", "halfnormal", ("halfnormal", "pareto 1.8"), 0.0),
    ("gamma 4 among sparse 0.04", "gamma 4.0", ("sparse 0.04",) * 2, 0.0),
    ("8 correlated lognormal 1.1", "lognormal 1.1", ("lognormal 1.1",) * 7, 0.5),
)
HELD_OUT_3_SIZES = (25, 60, 150, 500, 900)

# The third held-out grid was evaluated once, on the rule with copies up to k-hat 0.9: it
# failed beyond the range of tails (`negligible` in 9.2% of data sets for a Pareto 1.3
# input at n = 25, where k-hat is not judged; 6.5% at n = 60; every other cell at most 4.5%),
# so it is spent too, and this fourth grid, committed before the rule changes again, takes its
# place. Its tails stay in the range the rule claims (Pareto index 1.5 and above).
HELD_OUT_4 = (
    ("pareto 1.55 among correlated exp", "pareto 1.55", ("exponential",) * 3, 0.3),
    ("lognormal 1.6 beside pareto 2.4", "lognormal 1.6", ("pareto 2.4",), 0.0),
    ("gamma 0.4 among pareto 1.7", "gamma 0.4", ("pareto 1.7",) * 2, 0.0),
    ("sparse 0.12 among weibull 0.8", "sparse 0.12", ("weibull 0.8",) * 4, 0.2),
    ("uniform among 6 mixed", "uniform", ("exponential", "lognormal 1.2", "gamma 0.6",
                                          "sparse 0.35", "halfnormal", "pareto 2.8"), 0.0),
    ("pareto 2 beside sparse 0.2", "pareto 2.0", ("sparse 0.2",), 0.0),
    ("weibull 0.75 among correlated halfnormal", "weibull 0.75", ("halfnormal",) * 3, 0.6),
)
HELD_OUT_4_SIZES = (22, 45, 90, 350, 700)

# The fourth held-out grid was evaluated once, on the rule with copies up to k-hat 0.9 and
# claims refused above it: it passed (depends 2.5%, negligible 1.8%), but the seed's own
# report then called concat's head_1 <- tweet_a `inconclusive` (shuffle ablation at 256
# samples, share 0.49: k-hat 0.97 of bounded effects), so the refusal goes and this fifth grid,
# committed before that change, takes the fourth's place; tails in the claimed range.
HELD_OUT_5 = (
    ("pareto 1.5 beside correlated weibull 0.9", "pareto 1.5", ("weibull 0.9",), 0.35),
    ("exp among pareto 1.6, correlated", "exponential", ("pareto 1.6",) * 3, 0.25),
    ("sparse 0.06 among lognormal 0.6", "sparse 0.06", ("lognormal 0.6",) * 2, 0.0),
    ("gamma 0.8 among 7 mixed", "gamma 0.8", ("pareto 1.9", "sparse 0.5", "uniform",
                                              "weibull 1.5", "lognormal 1.3", "gamma 3.0",
                                              "halfnormal"), 0.1),
    ("lognormal 1.45 beside sparse 0.3", "lognormal 1.45", ("sparse 0.3",), 0.0),
    ("halfnormal among pareto 1.5", "halfnormal", ("pareto 1.5",) * 2, 0.0),
    ("4 correlated weibull 0.65", "weibull 0.65", ("weibull 0.65",) * 3, 0.45),
)
HELD_OUT_5_SIZES = (28, 55, 110, 450, 950)

# Every grid by its name in `python -m benchmarks.heldout --grid NAME`: (designs, sizes).
GRIDS = {"tuning": (TUNING, TUNING_SIZES), "held-out": (HELD_OUT, HELD_OUT_SIZES),
         "held-out-2": (HELD_OUT_2, HELD_OUT_2_SIZES), "held-out-3": (HELD_OUT_3, HELD_OUT_3_SIZES),
         "held-out-4": (HELD_OUT_4, HELD_OUT_4_SIZES), "held-out-5": (HELD_OUT_5, HELD_OUT_5_SIZES)}

SHARES = (0.05, 0.10, 0.20)  # the threshold, then the power points


def _inverse(name: str, u: np.ndarray, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Effects with mean 1 from the copula's uniforms u (and normals z = Phi^-1(u)); v: an
    independent uniform for a sparse input's size."""
    kind, _, arg = name.partition(" ")
    a = float(arg) if arg else 0.0
    if kind == "exponential":
        return -np.log1p(-u)
    if kind == "uniform":
        return 2.0 * u
    if kind == "halfnormal":
        return np.abs(z) * math.sqrt(math.pi / 2)
    if kind == "gamma":
        return gammaincinv(a, u) / a
    if kind == "weibull":
        return (-np.log1p(-u)) ** (1 / a) / math.gamma(1 + 1 / a)
    if kind == "lognormal":
        return np.exp(a * z - a * a / 2)
    if kind == "pareto":
        return (a - 1) / a * (1 - u) ** (-1 / a)
    if kind == "sparse":
        return (u < a) * -np.log1p(-v) / a
    raise ValueError(f"Expected a distribution of benchmarks/grids.py; received {name!r}")


def simulate(design: tuple, n: int, share: float, datasets: int,
             rng: np.random.Generator) -> np.ndarray:
    """Effects (datasets, inputs, n) of one head per data set; input 0 is the tested one and
    its true share of the head's total is exactly `share`."""
    _, tested, others, rho = design
    names = (tested,) + tuple(others)
    shape = (datasets, len(names), n)
    z = (math.sqrt(rho) * rng.standard_normal((datasets, 1, n))
         + math.sqrt(1 - rho) * rng.standard_normal(shape))  # (D, I, N) correlated normals
    u, v = ndtr(z), rng.random(shape)
    u = np.minimum(u, 1 - 2 ** -53)  # keep the inverse CDFs finite
    scale = [share] + [(1 - share) / len(others)] * len(others)
    return np.stack([_inverse(name, u[:, k], z[:, k], v[:, k]) * scale[k]
                     for k, name in enumerate(names)], axis=1)
