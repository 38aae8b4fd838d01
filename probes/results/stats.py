"""Summaries and verdicts derived from a ProbeResult.

The decision rule per (head, input) cell, with N samples, effects e_n >= 0, the head's other
inputs' summed effects o_n and the head's total t_n = e_n + o_n:
  - every e_n exactly 0.0: `structural_zero` if the graph has no path from the input to the
    head, else `zero` (a path exists but carries nothing);
  - otherwise two one-sided tests of the input's share of the head's effect, mean e / mean t
    (the share reported), against delta (default 0.05), on its log-odds scale:
      z = (log(mean e / mean o) - log(delta / (1 - delta))) / se,
      se^2 = var(e_n / mean e - o_n / mean o) / N          (delta method),
    referred to Student's t with (Kish's effective sample count of the component whose
    unseen tail would refute the claim: e against `negligible`, o against `depends`) - 1
    degrees of freedom, between 1 and N - 1. Each test runs on the samples plus
    ADVERSE_COPIES more copies of the sample most adverse to its claim (the largest
    d_n = e_n - delta * t_n against `negligible`, the smallest against `depends`): effects
    are skewed, sparse and heavy-tailed, and N samples miss about 1/N of the distribution
    above their largest value; under a Pareto tail of index 2 (the edge of the finite
    variance any t-type test needs) that part carries 2 x the largest value / N of the mean.
    The paired t-test on d used before called `negligible` in up to 12% of data sets whose
    true share was exactly delta; this test holds both decisions at 5% for exponential,
    sparse and log-normal (sigma 1.5) effects at N = 20, 50, 256 (benchmarks/calibration.py;
    heavier tails than that can still exceed it). mean d > 0 exactly when the share exceeds
    delta, and the tests are on means, not ranks: an OR head depends on tweet_a only on the
    samples where tweet_b does not already decide it, which a median misses. When no other
    input moves the head on any sample, the share is 1 wherever the head moves and the
    paired t-test on d decides (whether the input moves it on enough samples). The tests are
    scale-free: a head whose outputs barely move still depends on its inputs. Their p-values
    are Holm-corrected over the tested cells:
      `depends`      share significantly above delta (corrected p < alpha),
      `negligible`   share significantly below delta (the opposite one-sided test, corrected),
      `inconclusive` neither.
Two more verdicts say that the statistics cannot answer:
  `too_few_samples`  fewer than MIN_SAMPLES samples: the per-sample effects are kept and the
                     exact zeros are still reported, but no cell is tested;
  `unreliable`       a gradient probe's attributions are all exactly 0 while the head's output
                     moves when the input is zeroed (listed by the probe in
                     params["unreliable"] with the reason; see probes.methods.attribution_checks).
Intervals are percentile bootstrap intervals over samples (the same resamples for every cell,
so shares within a head stay consistent).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import stdtr  # scipy.stats would add 1.2 s to every command's start

from probes.results.protocol import Interval
from probes.results.seeds import generator
from probes.results.text import table

VERDICTS = ("depends", "negligible", "zero", "structural_zero", "inconclusive",
            "too_few_samples", "unreliable")
MIN_SAMPLES = 20
ADVERSE_COPIES = 2  # extra weight of the most adverse sample (module docstring)


@dataclasses.dataclass(frozen=True)
class Summary:
    """(H, I) arrays derived from a result; see the module docstring for the rule."""

    effect: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    share: np.ndarray
    share_ci_low: np.ndarray
    share_ci_high: np.ndarray
    p_value: np.ndarray
    p_negligible: np.ndarray
    verdict: np.ndarray
    loss_effect: np.ndarray | None
    settings: dict

    @property
    def depends(self) -> np.ndarray:
        return self.verdict == "depends"


def t_interval(values, level: float = 0.95) -> Interval:
    """Mean of `values` (R,) with Student's t interval at `level` (nan ends below 2 values)."""
    from scipy.special import stdtrit

    v = np.asarray(values, np.float64)
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, float("nan"), float("nan"))
    half = stdtrit(v.size - 1, 0.5 + level / 2) * v.std(ddof=1) / np.sqrt(v.size)
    return Interval(mean, mean - half, mean + half)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same shape; NaN entries are left out and stay NaN)."""
    p = np.asarray(p, dtype=float)
    flat = p.ravel()
    ok = np.flatnonzero(~np.isnan(flat))
    m = ok.size
    out = np.full_like(flat, np.nan)
    order = ok[np.argsort(flat[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate(flat[order] * (m - np.arange(m))))
    out[order] = adjusted
    return out.reshape(p.shape)


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator,
                    block: int = 256) -> np.ndarray:
    """Means of `values` (..., N) over `n_boot` resamples of the N samples -> (..., n_boot).

    The same resamples serve every leading index, which keeps ratios between cells paired.
    Resamples are drawn `block` at a time, fewer past 16,384 samples so that a block's
    (block, N) draws stay near 4M values (32 MB) however many samples there are.
    """
    n = values.shape[-1]
    if n > 16384:
        block = max(1, min(block, 2 ** 22 // n))
    flat = values.reshape(-1, n)
    out = np.empty((flat.shape[0], n_boot))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx = rng.integers(n, size=(b, n))  # (b, N) resampled rows
        counts = np.bincount((np.arange(b)[:, None] * n + idx).ravel(),
                             minlength=b * n).reshape(b, n).astype(np.float64)
        out[:, start:start + b] = flat @ counts.T / n
    return out.reshape(values.shape[:-1] + (n_boot,))


def _share(means: np.ndarray) -> np.ndarray:
    """Share of each input in its head's total, along axis 1; 0 where the total is 0."""
    total = means.sum(axis=1, keepdims=True)
    return np.divide(means, total, out=np.zeros_like(means), where=total > 0)


def _paired_t(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sample t-tests of mean(d) against 0 along the last axis -> (p greater, p less); a
    constant d decides by its sign alone (its t statistic is infinite)."""
    n = d.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=-1) / (d.std(axis=-1, ddof=1) / np.sqrt(n))
    constant, above = np.all(d == d[..., :1], axis=-1), d[..., 0] > 0
    # Student's t with n - 1 degrees of freedom: P(T >= t), P(T <= t).
    return (np.where(constant, np.where(above, 0.0, 1.0), stdtr(n - 1, -t)),
            np.where(constant, np.where(above, 1.0, 0.0), stdtr(n - 1, t)))


def _log_odds_test(e: np.ndarray, o: np.ndarray, d: np.ndarray, delta: float,
                   alternative: str) -> np.ndarray:
    """p-values along the last axis of the one-sided test of log(mean e / mean o) against
    log(delta / (1 - delta)) on the samples plus ADVERSE_COPIES more copies of the sample
    most adverse to the claim (module docstring). e, o, d: (..., N) -> (...)."""
    n, c = e.shape[-1], ADVERSE_COPIES
    pick = np.argmax if alternative == "less" else np.argmin
    j = pick(d, axis=-1)[..., None]
    ej, oj = np.take_along_axis(e, j, -1), np.take_along_axis(o, j, -1)  # (..., 1)
    total = n + c  # weight of the samples with the copies

    def wsum(x, xj):  # sum over the samples and the copies
        return x.sum(axis=-1, keepdims=True) + c * xj

    me, mo = wsum(e, ej) / total, wsum(o, oj) / total  # (..., 1)
    u, uj = e / me - o / mo, ej / me - oj / mo  # influence on log(me / mo)
    ubar = wsum(u, uj) / total
    var = wsum((u - ubar) ** 2, (uj - ubar) ** 2)[..., 0] / (total - 1)
    z = (np.log(me / mo)[..., 0] - np.log(delta / (1 - delta))) / np.sqrt(var / total)
    x, xj = (e, ej) if alternative == "less" else (o, oj)  # its unseen tail would refute it
    df = np.clip(wsum(x, xj)[..., 0] ** 2 / wsum(x ** 2, xj ** 2)[..., 0] - 1, 1, n - 1)
    return stdtr(df, -z) if alternative == "greater" else stdtr(df, z)


def share_p_values(effects: np.ndarray, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Uncorrected one-sided p-values of every cell's share against delta (the module
    docstring gives the tests; `summarize` Holm-corrects them).

    Args:
        effects: (H, I, N) per-sample effects >= 0, N >= 2.
        delta: the threshold share, in (0, 1).
    Returns:
        (p_depends, p_negligible), each (H, I): small p_depends when the share is above delta,
        small p_negligible when below; NaN where a cell's effects, or its d, are all 0.
    """
    e = np.asarray(effects, dtype=float)
    if e.ndim != 3 or e.shape[2] < 2:
        raise ValueError(f"Expected effects of shape (heads, inputs, samples >= 2); "
                         f"received {e.shape}")
    o = np.stack([np.delete(e, i, axis=1).sum(axis=1) for i in range(e.shape[1])],
                 axis=1)  # (H, I, N) the other inputs' effects, summed (0.0 if none moves)
    d = e - delta * (e + o)
    # Scale-free by construction; dividing by the largest effect keeps the squares in range.
    scale = np.maximum(e.max(axis=2, keepdims=True), o.max(axis=2, keepdims=True))
    e, o = e / np.where(scale > 0, scale, 1.0), o / np.where(scale > 0, scale, 1.0)
    alone = ~np.any(o != 0, axis=2)  # no other input moves the head: the share is 1
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN / inf cells are masked below
        p_dep = _log_odds_test(e, o, d, delta, "greater")
        p_neg = _log_odds_test(e, o, d, delta, "less")
    t_dep, t_neg = _paired_t(d)
    p_dep, p_neg = np.where(alone, t_dep, p_dep), np.where(alone, t_neg, p_neg)
    untested = ~np.any(e != 0, axis=2) | ~np.any(d != 0, axis=2)
    return np.where(untested, np.nan, p_dep), np.where(untested, np.nan, p_neg)


def summarize(result, *, seed: int | None = None, n_boot: int = 2000,
              alpha: float = 0.05, delta: float = 0.05, confidence: float = 0.95) -> Summary:
    """Derives means, intervals, shares, corrected p-values and verdicts.

    Args:
        result: per-sample effects (H, I, N).
        seed: seed of the bootstrap (default: the result's own seed).
        n_boot: bootstrap resamples.
        alpha: family-wise error rate of the per-cell tests.
        delta: share of a head's total effect below which an input is negligible.
        confidence: level of the intervals.
    Returns:
        A Summary of (H, I) arrays.
    """
    if not 0 < delta < 1 or not 0 < alpha < 1:
        raise ValueError(f"Expected delta and alpha in (0, 1); received {delta}, {alpha}")
    seed = result.seed if seed is None else seed
    rng = generator(seed, "bootstrap")
    e = result.effects  # (H, I, N)
    mean = e.mean(axis=2)
    boot = bootstrap_means(e, n_boot, rng)  # (H, I, B)
    lo, hi = 50 * (1 - confidence), 50 * (1 + confidence)
    share_boot = _share(boot)
    all_zero = ~np.any(e != 0.0, axis=2)  # exact zeros, not "small"
    few = result.samples < MIN_SAMPLES
    p_dep = p_neg = np.full(mean.shape, np.nan)
    if not few:
        p_dep, p_neg = share_p_values(e, delta)
    p_dep, p_neg = holm(p_dep), holm(p_neg)
    verdict = np.full(mean.shape, "too_few_samples" if few else "inconclusive", dtype=object)
    verdict[p_neg < alpha] = "negligible"
    verdict[p_dep < alpha] = "depends"
    verdict[all_zero & result.structural] = "zero"
    verdict[all_zero & ~result.structural] = "structural_zero"
    for cell in result.params.get("unreliable", ()):
        verdict[result.heads.index(cell["head"]), result.inputs.index(cell["input"])] = \
            "unreliable"
    loss = None if result.loss_effects is None else result.loss_effects.mean(axis=2)
    return Summary(effect=mean, ci_low=np.percentile(boot, lo, axis=2),
                   ci_high=np.percentile(boot, hi, axis=2), share=_share(mean),
                   share_ci_low=np.percentile(share_boot, lo, axis=2),
                   share_ci_high=np.percentile(share_boot, hi, axis=2),
                   p_value=np.where(np.isnan(p_dep), 1.0, p_dep),
                   p_negligible=np.where(np.isnan(p_neg), 1.0, p_neg),
                   verdict=verdict.astype(str), loss_effect=loss,
                   settings={"n_boot": n_boot, "alpha": alpha, "delta": delta,
                             "confidence": confidence, "seed": seed,
                             "min_samples": MIN_SAMPLES,
                             "test": "one-sided tests of the share's log odds (delta-method "
                                     "SE, most adverse sample + 2 copies, Kish df), Holm"})


def to_json(result, summary: Summary) -> dict:
    """The JSON contract: one object, rows are heads and columns are inputs."""
    def grid(a):
        return np.asarray(a).tolist()

    out = {"probe": result.probe, "method": result.method, "model": result.model,
           "samples": result.samples, "seed": result.seed,
           "heads": list(result.heads), "inputs": list(result.inputs),
           "effect": grid(summary.effect), "ci_low": grid(summary.ci_low),
           "ci_high": grid(summary.ci_high), "share": grid(summary.share),
           "share_ci_low": grid(summary.share_ci_low),
           "share_ci_high": grid(summary.share_ci_high), "p_value": grid(summary.p_value),
           "verdict": grid(summary.verdict), "depends": grid(summary.depends),
           "structural": grid(result.structural), "params": result.params,
           "statistics": summary.settings}
    if summary.loss_effect is not None:
        out["loss_effect"] = grid(summary.loss_effect)
    return out


def disagreements(res, ref) -> list[dict]:
    """The cells where two results of one model give different verdicts, each as {"head",
    "input", <res.probe>: its verdict, "ablation": the reference's}."""
    a, b = res.summary().verdict, ref.summary().verdict
    return [{"head": head, "input": name, res.probe: str(a[h, i]), "ablation": str(b[h, i])}
            for h, head in enumerate(res.heads) for i, name in enumerate(res.inputs)
            if a[h, i] != b[h, i]]


def completeness(res) -> dict:
    """Integrated gradients' completeness: steps, quadrature, median gap, samples over 5%,
    whether the median is under the tolerance, and every gap (H, N)."""
    p = res.params
    return {"steps": p["steps"], "quadrature": p["quadrature"], "median_gap": p["median_gap"],
            "samples_over_5pct": p["samples_over_5pct"], "converged": p["converged"],
            "gap": res.completeness_gap.tolist()}


def matrix_rows(res, summary) -> tuple[list[str], list[list]]:
    """(header, rows) of the dependency matrix: a row per cell."""
    ci = round(100 * summary.settings["confidence"])
    graph = res.params.get("graph", True)  # False: a subclassed model, no graph to read
    rows = [[head, name, ("yes" if res.structural[h, i] else "no") if graph else "n/a",
             f"{summary.effect[h, i]:.4g}",
             f"[{summary.ci_low[h, i]:.4g}, {summary.ci_high[h, i]:.4g}]",
             f"{summary.share[h, i]:.3f}", _p_text(summary.p_value[h, i]),
             summary.verdict[h, i]]
            for h, head in enumerate(res.heads) for i, name in enumerate(res.inputs)]
    return (["head", "input", "path", "effect", f"{ci}% CI", "share", "p (Holm)", "verdict"],
            rows)


def format_table(res, summary) -> str:
    """The dependency matrix as text: a row per cell, then how to read the verdicts."""
    settings = summary.settings
    lines = [f"{res.probe} ({res.method}) of {res.model} on {res.samples} samples, "
             f"seed {res.seed}",
             table(*matrix_rows(res, summary), align="lllrrrrl"),
             f"verdict: share of the head's total effect above {settings['delta']} (one-sided "
             f"tests of its log odds, Holm, alpha {settings['alpha']}); exact zeros are zero / "
             "structural_zero"]
    if res.samples < settings["min_samples"]:
        lines.append(f"too_few_samples: {res.samples} sample(s); the tests need at least "
                     f"{settings['min_samples']} (the per-sample effects are saved)")
    lines += [f"unreliable {cell['head']} <- {cell['input']}: {cell['reason']}"
              for cell in res.params.get("unreliable", ())]
    return "\n".join(lines)


def _p_text(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"
