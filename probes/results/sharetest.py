"""The tests behind a cell's verdict: a studentised bootstrap (bootstrap-t) of the share's log
odds, and the tail diagnostics that refuse a claim the samples cannot carry.

The statistic, per cell with N samples, effects e_n, the other inputs' summed effects o_n:
    T = (log(mean e / mean o) - log(delta / (1 - delta))) / se,
    se^2 = var(e_n / mean e - o_n / mean o) / N          (delta method),
and its null distribution is that of T* = (log(mean e* / mean o*) - log(mean e / mean o)) / se*
over B resamples of the N samples (Hall 1992, The Bootstrap and Edgeworth Expansion, 3.10;
Efron and Tibshirani 1993, ch. 12): p_depends = (1 + #{T* >= T}) / (B + 1), p_negligible =
(1 + #{T* <= T}) / (B + 1). Unlike Student's t, T*'s distribution carries the skewness of the
effects: a skewed input's small means come with small standard errors, and its lower tail is
longer. A cell where no other input moves the head (mean o = 0) is decided by a paired t-test
on d = e - delta t, a constant d by its sign, a constant share (se = 0) by its side of delta.
Each claim's test runs on the samples plus copies of its most adverse sample, standing for
the tail of the refuting effect that the samples have not seen (copies_for).

Tail diagnostics: the claim `negligible` is refuted by an unseen tail of e, `depends` by one
of o; for that x, the generalized Pareto shape k-hat of the largest x_n (Zhang and Stephens
2009, with the tail size and weakly informative prior of PSIS: Vehtari et al. 2024, Pareto
smoothed importance sampling, JMLR 25) sets the copies (copies_for, at most K_HAT's 30), and
a claim is refused (`inconclusive`, with the reason) when the largest x_n carries more than
FEW of the sum of x (one sample decides the mean). A cell left inconclusive beside a k-hat
above K_HAT says so (heavy): its claim had to hold with the most copies.
"""

from __future__ import annotations

import numpy as np
from scipy.special import stdtr

FEW = 0.5  # the largest sample's part of the sum beyond which one sample decides the mean
UNSEEN = 3  # unseen part of the distribution beyond the largest sample, x 1 / N (95%)
# The tail shape assumed where k-hat is not judged (fewer than 50 samples): the heaviest the
# rule is calibrated for, a Pareto tail of index 1.5 (benchmarks/grids.py); with 1/2 a Pareto
# 1.3 input was called `negligible` at its threshold share in 9.2% of data sets of 25.
UNJUDGED_K = 2 / 3
# The heaviest tail the copies stand for (30 at 0.9): a heavier k-hat takes as many. Refusing
# every claim beyond a k-hat (PSIS' 0.7, then 0.9) turned away clear claims of real models,
# whose effects are bounded but whose k-hat from a few dozen tail samples is not: the seed's
# concat head_1 <- tweet_a (shuffle ablation, 256 samples, share 0.49, k-hat 0.97), a share
# of 0.5 in 1-4% of random three-input models at 60 samples.
K_HAT = 0.9
UNSEEN_N = 60  # fewer samples can miss an input that moves the head on 5% of them (stats)
MIN_TAIL = 10  # fewer tail samples make k-hat mostly its prior: not judged


def resamples_for(cells: int, alpha: float) -> int:
    """Bootstrap resamples for `cells` tested cells at family-wise `alpha`: enough that the
    smallest p-value, 1 / (B + 1), is 1/20 of Holm's first threshold alpha / cells."""
    return max(1999, int(np.ceil(20 * cells / alpha)) - 1)


def paired_t(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sample t-tests of mean(d) against 0 along the last axis -> (p greater, p less); a
    constant d decides by its sign alone (its t statistic is infinite)."""
    n = d.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=-1) / (d.std(axis=-1, ddof=1) / np.sqrt(n))
    constant, above = np.all(d == d[..., :1], axis=-1), d[..., 0] > 0
    # Student's t with n - 1 degrees of freedom: P(T >= t), P(T <= t).
    return (np.where(constant, np.where(above, 0.0, 1.0), stdtr(n - 1, -t)),
            np.where(constant, np.where(above, 1.0, 0.0), stdtr(n - 1, t)))


def _studentised(sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(log(mean e / mean o), se) from sums (5, ...) of e, o, e^2, o^2, e o over n samples."""
    se_, so, see, soo, seo = sums
    me, mo = se_ / n, so / n
    # sum of (e/me - o/mo)^2; the mean of e/me - o/mo is exactly 0
    ss = see / me ** 2 - 2 * seo / (me * mo) + soo / mo ** 2
    return np.log(me / mo), np.sqrt(np.maximum(ss, 0.0) / (n - 1) / n)


def copies_for(k: np.ndarray) -> np.ndarray:
    """Copies of the most adverse sample that stand for the unseen tail, per cell, from the
    k-hat of the effect that would refute the claim. With 95% confidence the part of the
    distribution beyond the N samples' largest value m holds at most UNSEEN / N of it (the
    rule of three: a probability p leaves N samples without a draw there with chance
    (1 - p)^N = e^-3 = 5% at p = 3 / N); under a generalized Pareto tail of shape k < 1 a value
    beyond m averages at most m / (1 - k). So that part adds at most UNSEEN / (1 - k) x m / N
    to the mean: ceil(UNSEEN / (1 - k)) copies of the most adverse sample, k clipped to
    [0, K_HAT] (-inf, no tail, to 0) and taken as UNJUDGED_K where it is not judged (NaN)."""
    k = np.asarray(k, dtype=float)
    k = np.where(np.isnan(k), UNJUDGED_K, np.clip(k, 0.0, K_HAT))
    return np.ceil(UNSEEN / (1 - k) - 1e-9).astype(int)


def with_copies(e: np.ndarray, o: np.ndarray, j: np.ndarray, copies: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """e, o (cells, N) with `copies` more copies of each cell's sample j (cells,) appended ->
    (cells, N + copies) each: the most adverse sample's weight for the unseen tail."""
    pick = j[:, None]
    return (np.concatenate([e, np.repeat(np.take_along_axis(e, pick, -1), copies, -1)], -1),
            np.concatenate([o, np.repeat(np.take_along_axis(o, pick, -1), copies, -1)], -1))


def statistic(e: np.ndarray, o: np.ndarray, delta: float) -> np.ndarray:
    """T of the module docstring along the last axis of e, o (..., N)."""
    n = e.shape[-1]
    log_ratio, se = _studentised(np.stack([e, o, e * e, o * o, e * o]).sum(axis=-1), n)
    return (log_ratio - np.log(delta / (1 - delta))) / se


def bootstrap_t(e: np.ndarray, o: np.ndarray, delta: float, resamples: int,
                rng: np.random.Generator, block: int = 256) -> tuple[np.ndarray, ...]:
    """(T, p_depends, p_negligible), each (...), of the bootstrap-t test (module docstring)
    along the last axis of e, o (..., N) with mean e, mean o > 0. The same resamples serve
    every cell."""
    n = e.shape[-1]
    x = np.stack([e, o, e * e, o * o, e * o]).reshape(5, -1, n)  # (5, cells, N)
    log_ratio, se = _studentised(x.sum(axis=-1), n)  # (cells,)
    t = (log_ratio - np.log(delta / (1 - delta))) / se
    exact = se <= 1e-12 * np.abs(log_ratio - np.log(delta / (1 - delta)))  # constant share
    above, below = np.zeros(t.shape), np.zeros(t.shape)
    flat = x.reshape(-1, n)  # (5 * cells, N)
    if n > 16384:
        block = max(1, min(block, 2 ** 22 // n))
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        idx = rng.integers(n, size=(b, n))  # (b, N) resampled rows
        counts = np.bincount((np.arange(b)[:, None] * n + idx).ravel(),
                             minlength=b * n).reshape(b, n).astype(np.float64)
        sums = (counts @ flat.T).T.reshape(5, -1, b)  # (5, cells, b)
        star, se_star = _studentised(sums, n)
        t_star = (star - log_ratio[:, None]) / se_star  # (cells, b)
        # A resample without e or without o has no studentised value: it counts against
        # both claims.
        lost = ~np.isfinite(t_star)
        above += np.sum((t_star >= t[:, None]) | lost, axis=1)
        below += np.sum((t_star <= t[:, None]) | lost, axis=1)
    p_dep = np.where(exact, (t < 0).astype(float), (1 + above) / (resamples + 1))
    p_neg = np.where(exact, (t > 0).astype(float), (1 + below) / (resamples + 1))
    shape = e.shape[:-1]
    return t.reshape(shape), p_dep.reshape(shape), p_neg.reshape(shape)


def k_hat(x: np.ndarray) -> np.ndarray:
    """Generalized Pareto shape of the largest values of x (..., N) along the last axis: the
    Zhang and Stephens (2009) estimate over the M = ceil(min(N / 5, 3 sqrt(N))) largest
    exceedances, shrunk as PSIS does ((M k + 10 * 0.5) / (M + 10)); -inf where they are all
    equal (no tail)."""
    n = x.shape[-1]
    m = int(np.ceil(min(n / 5, 3 * np.sqrt(n))))
    top = np.sort(x, axis=-1)[..., -(m + 1):]  # (..., M + 1)
    y = top[..., 1:] - top[..., :1]  # (..., M) exceedances over the threshold, ascending
    flat = y.reshape(-1, m)
    out = np.full(flat.shape[0], -np.inf)
    ok = flat[:, -1] > 0
    y = flat[ok]
    grid = 30 + int(np.sqrt(m))
    quartile = y[:, max(int(m / 4 + 0.5) - 1, 0)]
    quartile = np.where(quartile > 0, quartile, y[:, -1])
    b = 1 - np.sqrt(grid / (np.arange(1, grid + 1) - 0.5))  # (grid,)
    b = b / (3 * quartile[:, None]) + 1 / y[:, -1:]  # (cells, grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log1p(-b[:, :, None] * y[:, None, :]).mean(axis=-1)  # (cells, grid)
        profile = m * (np.log(-b / k) - k - 1)
        w = 1 / np.exp(profile[:, None, :] - profile[:, :, None]).sum(axis=-1)
    w = np.where(np.isfinite(w), w, 0.0)
    w = w / w.sum(axis=-1, keepdims=True)
    b_post = (b * w).sum(axis=-1)
    k_post = np.log1p(-b_post[:, None] * y).mean(axis=-1)
    out[ok] = (m * k_post + 10 * 0.5) / (m + 10)
    return out.reshape(x.shape[:-1])


def refusals(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(largest sample's part of the sum, k-hat) of x (..., N) along the last axis; k-hat is
    NaN (not judged) where its tail would hold fewer than MIN_TAIL samples (N < 50)."""
    total = x.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(total > 0, x.max(axis=-1) / total, 0.0)
    n = x.shape[-1]
    if np.ceil(min(n / 5, 3 * np.sqrt(n))) < MIN_TAIL:
        return part, np.full(part.shape, np.nan)
    return part, k_hat(x)


def reason(part: float, which: str) -> str:
    """The table's reason for refusing a claim, '' when it stands."""
    if part == np.inf:
        return (f"no other input with a path moved the head on any of fewer than {UNSEEN_N} "
                "samples")
    if part > FEW:
        return f"one sample carries {part:.0%} of {which}"
    return ""


def heavy(k: float, claim: str, which: str) -> str:
    """Why an inconclusive cell's `claim` (the side its share is on) may stay unshown: the tail
    of the effect that would refute it beyond K_HAT; '' when not."""
    if not k > K_HAT:
        return ""
    return (f"{claim} not shown: the tail of {which} is heavy (Pareto k-hat {k:.2f} > "
            f"{K_HAT}), and the claim must hold with {int(copies_for(K_HAT))} copies of its "
            "most adverse sample")
