"""Summaries and verdicts derived from a ProbeResult.

The decision rule per (head, input) cell, with N samples, effects e_n >= 0 and the head's total
effect t_n = sum over inputs of e_n:
  - every e_n exactly 0.0: `structural_zero` if the graph has no path from the input to the
    head, else `zero` (a path exists but carries nothing);
  - otherwise a paired, one-sided t-test on d_n = e_n - delta * t_n. mean(d) > 0 exactly when
    the input's share of the head's effect (mean e / mean t, the share reported) exceeds delta
    (default 0.05), so the test agrees with the share shown. A rank test would not: an OR
    head depends on tweet_a only on the samples where tweet_b does not already decide it, and
    the median of d misses that. The test is scale-free: a head whose outputs barely move
    still depends on its inputs. Its p-values are Holm-corrected over the tested cells:
      `depends`      share significantly above delta (corrected p < alpha),
      `negligible`   share significantly below delta (the opposite one-sided test, corrected),
      `inconclusive` neither.
Two more verdicts say that the statistics cannot answer:
  `too_few_samples`  fewer than MIN_SAMPLES samples: the per-sample effects are kept and the
                     exact zeros are still reported, but no cell is tested;
  `unreliable`       a gradient probe's attributions are all exactly 0 while the head's output
                     moves when the input is zeroed (listed by the probe in
                     params["unreliable"] with the reason; see probes.attribution_checks).
Intervals are percentile bootstrap intervals over samples (the same resamples for every cell,
so shares within a head stay consistent).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import stdtr  # scipy.stats would add 1.2 s to every command's start

from probes.result import ProbeResult
from probes.seeds import generator
from probes.text import table

VERDICTS = ("depends", "negligible", "zero", "structural_zero", "inconclusive",
            "too_few_samples", "unreliable")
MIN_SAMPLES = 20


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
    """
    n = values.shape[-1]
    flat = values.reshape(-1, n)
    out = np.empty((flat.shape[0], n_boot))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx = rng.integers(n, size=(b, n))  # (b, N) resampled rows
        counts = np.zeros((b, n))
        np.add.at(counts, (np.arange(b)[:, None], idx), 1.0)
        out[:, start:start + b] = flat @ counts.T / n
    return out.reshape(values.shape[:-1] + (n_boot,))


def _share(means: np.ndarray) -> np.ndarray:
    """Share of each input in its head's total, along axis 1; 0 where the total is 0."""
    total = means.sum(axis=1, keepdims=True)
    return np.divide(means, total, out=np.zeros_like(means), where=total > 0)


def _one_sided(d: np.ndarray, alternative: str) -> float:
    """One-sample t-test of mean(d) against 0; a constant d decides by its sign alone."""
    if not np.any(d):
        return np.nan
    if np.all(d == d[0]):  # no variance: the t statistic is infinite
        return 0.0 if (d[0] > 0) == (alternative == "greater") else 1.0
    n = d.size
    t = d.mean() / (d.std(ddof=1) / np.sqrt(n))
    # Student's t with n - 1 degrees of freedom: P(T >= t) for "greater", P(T <= t) else.
    return float(stdtr(n - 1, -t if alternative == "greater" else t))


def summarize(result: ProbeResult, *, seed: int | None = None, n_boot: int = 2000,
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
    total = e.sum(axis=1, keepdims=True)  # (H, 1, N)
    d = e - delta * total  # (H, I, N) paired differences
    p_dep = np.full(mean.shape, np.nan)
    p_neg = np.full(mean.shape, np.nan)
    few = result.samples < MIN_SAMPLES
    for h, i in zip(*np.nonzero(~all_zero & (not few))):
        p_dep[h, i] = _one_sided(d[h, i], "greater")
        p_neg[h, i] = _one_sided(d[h, i], "less")
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
                             "test": "one-sided paired t-test on e - delta * total, Holm"})


def to_json(result: ProbeResult, summary: Summary) -> dict:
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


def disagreements(res: ProbeResult, ref: ProbeResult) -> list[dict]:
    """The cells where two results of one model give different verdicts, each as {"head",
    "input", <res.probe>: its verdict, "ablation": the reference's}."""
    a, b = res.summary.verdict, ref.summary.verdict
    return [{"head": head, "input": name, res.probe: str(a[h, i]), "ablation": str(b[h, i])}
            for h, head in enumerate(res.heads) for i, name in enumerate(res.inputs)
            if a[h, i] != b[h, i]]


def completeness(res: ProbeResult) -> dict:
    """Integrated gradients' completeness: steps, quadrature, median gap, samples over 5%,
    whether the median is under the tolerance, and every gap (H, N)."""
    p = res.params
    return {"steps": p["steps"], "quadrature": p["quadrature"], "median_gap": p["median_gap"],
            "samples_over_5pct": p["samples_over_5pct"], "converged": p["converged"],
            "gap": res.completeness_gap.tolist()}


def format_table(res, summary) -> str:
    """The dependency matrix as text: a row per cell, then how to read the verdicts."""
    settings = summary.settings
    ci = round(100 * settings["confidence"])
    rows = [[head, name, "yes" if res.structural[h, i] else "no", f"{summary.effect[h, i]:.4g}",
             f"[{summary.ci_low[h, i]:.4g}, {summary.ci_high[h, i]:.4g}]",
             f"{summary.share[h, i]:.3f}", _p_text(summary.p_value[h, i]),
             summary.verdict[h, i]]
            for h, head in enumerate(res.heads) for i, name in enumerate(res.inputs)]
    lines = [f"{res.probe} ({res.method}) of {res.model} on {res.samples} samples, "
             f"seed {res.seed}",
             table(["head", "input", "path", "effect", f"{ci}% CI", "share", "p (Holm)",
                    "verdict"], rows, align="lllrrrrl"),
             f"verdict: share of the head's total effect above {settings['delta']} (one-sided "
             f"paired t-test, Holm, alpha {settings['alpha']}); exact zeros are zero / "
             "structural_zero"]
    if res.samples < settings["min_samples"]:
        lines.append(f"too_few_samples: {res.samples} sample(s); the tests need at least "
                     f"{settings['min_samples']} (the per-sample effects are saved)")
    lines += [f"unreliable {cell['head']} <- {cell['input']}: {cell['reason']}"
              for cell in res.params.get("unreliable", ())]
    return "\n".join(lines)


def _p_text(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"
