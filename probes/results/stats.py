"""Summaries and verdicts derived from a ProbeResult.

The decision rule per (head, input) cell, with N samples, effects e_n >= 0, the head's other
inputs' summed effects o_n and the head's total t_n = e_n + o_n:
  - every e_n exactly 0.0: `structural_zero` if the graph has no path from the input to the
    head, else `zero` (a path exists but carries nothing);
  - otherwise two one-sided tests of the input's share of the head's effect, mean e / mean t
    (the share reported), against delta (default 0.05): bootstrap-t tests of its log odds,
    each on the samples plus ceil(3 / (1 - k)) copies of the sample most adverse to its claim
    for the tail they have not seen (probes.results.sharetest gives the tests, their
    reference and the diagnostics). Their p-values are Holm-corrected over the tested cells:
      `depends`      share significantly above delta (corrected p < alpha),
      `negligible`   share significantly below delta (the opposite one-sided test, corrected),
      `inconclusive` neither, or the claim refused (one sample carries most of the effect
                     that would refute it, or no other input with a path moved the head in
                     fewer than 60 samples); the reason is in `Summary.reason`, the table and
                     the JSON, as is a tail too heavy for the copies (Pareto k-hat above 0.9).
    The tests are on means, not ranks (an OR head depends on tweet_a only where tweet_b does
    not already decide it, which a median misses) and scale-free. Chosen on the tuning grids of
    benchmarks/grids.py, checked on its last held-out grid (benchmarks/heldout.py).
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

from probes.results import sharetest
from probes.results.protocol import Interval
from probes.results.seeds import generator
from probes.results.text import table

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
    reason: np.ndarray | None = None  # why a claim was refused ('' where none)
    statistic: np.ndarray | None = None  # the bootstrap-t statistic T (NaN where untested)

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


def _tests(effects: np.ndarray, delta: float, resamples: int, seed: int | None,
           structural: np.ndarray | None = None) -> dict:
    """Every cell's statistic, uncorrected p-values and refused claims (sharetest's
    docstring): {"t", "p_depends", "p_negligible", "refuse_depends", "refuse_negligible"},
    each (H, I); the refusals are (part of the largest sample, k-hat) pairs of o and e."""
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
    untested = ~np.any(e != 0, axis=2) | ~np.any(d != 0, axis=2)
    t = np.full(alone.shape, np.nan)
    p_dep, p_neg = sharetest.paired_t(d)
    ratio = ~alone & ~untested
    part, k = sharetest.refusals(o)
    against_negligible = sharetest.refusals(e)
    if np.any(ratio):
        with np.errstate(divide="ignore", invalid="ignore"):  # resamples without e or o
            # Each claim on the samples plus copies of its most adverse one, as many as the
            # tail of the effect that would refute it hides (sharetest.copies_for).
            for claim, pick, tail in (("depends", np.argmin, k),
                                      ("negligible", np.argmax, against_negligible[1])):
                copies = sharetest.copies_for(tail)
                for c in np.unique(copies[ratio]):
                    cells = ratio & (copies == c)
                    a, b = sharetest.with_copies(e[cells], o[cells],
                                                 pick(d[cells], axis=-1), int(c))
                    _, p_d, p_n = sharetest.bootstrap_t(
                        a, b, delta, resamples, generator(seed, "bootstrap_t"))
                    if claim == "depends":
                        p_dep[cells] = p_d
                    else:
                        p_neg[cells] = p_n
            t[ratio] = sharetest.statistic(e[ratio], o[ratio], delta)
    # Alone, but another input has a path to the head: in fewer than UNSEEN_N samples it may
    # move the head on a fraction of samples that none of them shows (at most 3 / N with 95%
    # confidence, the rule of three: 5% at 60 samples), so `depends` is not claimed.
    paths = np.ones(alone.shape, bool) if structural is None else np.asarray(structural)
    unseen = alone & (paths.sum(axis=1, keepdims=True) - paths > 0) & (
        e.shape[2] < sharetest.UNSEEN_N)
    return {"t": t, "p_depends": np.where(untested, np.nan, p_dep),
            "p_negligible": np.where(untested, np.nan, p_neg),
            "refuse_depends": (np.where(unseen, np.inf, part), k),
            "refuse_negligible": against_negligible}


def share_p_values(effects: np.ndarray, delta: float = 0.05, *, resamples: int = 1999,
                   seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uncorrected one-sided p-values of every cell's share against delta (probes.results.
    sharetest gives the tests; `summarize` Holm-corrects them).

    Args:
        effects: (H, I, N) per-sample effects >= 0, N >= 2.
        delta: the threshold share, in (0, 1).
        resamples: bootstrap resamples B (the smallest p-value is 1 / (B + 1)).
        seed: seed of the resamples (the "bootstrap_t" stream).
    Returns:
        (p_depends, p_negligible), each (H, I): small p_depends when the share is above delta,
        small p_negligible when below; NaN where a cell's effects, or its d, are all 0.
    """
    tests = _tests(effects, delta, resamples, seed)
    return tests["p_depends"], tests["p_negligible"]


def _decide(tests: dict, p_dep: np.ndarray, p_neg: np.ndarray, alpha: float,
            verdict: np.ndarray) -> np.ndarray:
    """Writes the claims into `verdict` (H, I) from the corrected p-values, a refused claim
    `inconclusive`; returns the reasons (H, I), '' where none."""
    reasons = np.full(verdict.shape, "", dtype=object)
    sides = (("negligible", p_neg, "the input's effects"),
             ("depends", p_dep, "the other inputs' effects"))
    for claim, p, which in sides:
        part, _ = tests["refuse_" + claim]
        for h, i in zip(*np.nonzero(p < alpha)):
            why = sharetest.reason(part[h, i], which)
            verdict[h, i] = "inconclusive" if why else claim
            reasons[h, i] = f"{claim} refused: {why}" if why else ""
    # Left inconclusive beside a tail heavier than the copies cover: said, on the share's side.
    for h, i in zip(*np.nonzero((verdict == "inconclusive") & (reasons == ""))):
        if np.isfinite(tests["t"][h, i]):
            claim, _, which = sides[int(tests["t"][h, i] > 0)]
            reasons[h, i] = sharetest.heavy(tests["refuse_" + claim][1][h, i], claim, which)
    return reasons


def cell_verdicts(effects: np.ndarray, delta: float = 0.05, alpha: float = 0.05,
                  seed: int | None = 0) -> np.ndarray:
    """The verdicts (H, I) of `summarize` on H one-head results at once (Holm within each
    head), for the calibration; cells whose effects are all 0 are `inconclusive` here."""
    h, i, _ = effects.shape
    tests = _tests(effects, delta, sharetest.resamples_for(i, alpha), seed)
    p_dep = np.stack([holm(row) for row in tests["p_depends"]])
    p_neg = np.stack([holm(row) for row in tests["p_negligible"]])
    verdict = np.full((h, i), "inconclusive", dtype=object)
    _decide(tests, p_dep, p_neg, alpha, verdict)
    return verdict


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
    verdict = np.full(mean.shape, "too_few_samples" if few else "inconclusive", dtype=object)
    reasons = np.full(mean.shape, "", dtype=object)
    p_dep = p_neg = t = np.full(mean.shape, np.nan)
    cells = int(np.sum(np.any(e != 0.0, axis=2)))
    resamples = sharetest.resamples_for(cells, alpha)
    if not few:
        tests = _tests(e, delta, resamples, seed, result.structural)
        p_dep, p_neg, t = holm(tests["p_depends"]), holm(tests["p_negligible"]), tests["t"]
        reasons = _decide(tests, p_dep, p_neg, alpha, verdict)
    verdict[all_zero & result.structural] = "zero"
    verdict[all_zero & ~result.structural] = "structural_zero"
    reasons[all_zero] = ""
    for cell in result.params.get("unreliable", ()):
        h, i = result.heads.index(cell["head"]), result.inputs.index(cell["input"])
        verdict[h, i], reasons[h, i] = "unreliable", ""
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
                             "min_samples": MIN_SAMPLES, "resamples_t": resamples,
                             "tested_cells": cells, "few": sharetest.FEW,
                             "k_hat": sharetest.K_HAT,
                             "test": "bootstrap-t of the share's log odds, tail "
                                     "diagnostics, Holm"},
                   reason=reasons.astype(str), statistic=t)


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
           "reason": grid(summary.reason),
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
             f"bootstrap-t tests of its log odds, Holm, alpha {settings['alpha']}); exact zeros "
             "are zero / structural_zero"]
    if res.samples < settings["min_samples"]:
        lines.append(f"too_few_samples: {res.samples} sample(s); the tests need at least "
                     f"{settings['min_samples']} (the per-sample effects are saved)")
    lines += [f"unreliable {cell['head']} <- {cell['input']}: {cell['reason']}"
              for cell in res.params.get("unreliable", ())]
    lines += [f"inconclusive {head} <- {name}: {summary.reason[h, i]}"
              for h, head in enumerate(res.heads) for i, name in enumerate(res.inputs)
              if summary.reason is not None and summary.reason[h, i]]
    return "\n".join(lines)


def _p_text(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"
