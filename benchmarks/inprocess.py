"""In-process measurements: the machine's matmul rate, IG quadrature accuracy, a profile.

These call the toolkit's public functions (`probes.methods.attribution.attribute`) directly.
"""

from __future__ import annotations

import cProfile
import inspect
import io
import pstats
import time

import numpy as np

from benchmarks import workload

QUADRATURES = ("riemann", "trapezoid", "gauss_legendre")
GAP_TARGET = 0.01  # the target: median relative completeness gap under 1%


def matmul_rate(n: int, trials: int = 3, repeats: int = 5) -> dict:
    """Dense float32 matmul rate of this machine, GFLOP/s, the best of `trials`.

    Each trial times `repeats` products of two (n, n) matrices (2 n^3 FLOPs each) after one
    warm-up product.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n)), tf.float32)
    b = tf.constant(rng.standard_normal((n, n)), tf.float32)
    tf.matmul(a, b).numpy()
    rates = []
    for _ in range(trials):
        started = time.perf_counter()
        for _ in range(repeats):
            c = tf.matmul(a, b)
        c.numpy()  # CPU eager ops are synchronous; this makes sure of it
        rates.append(2.0 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9)
    return {"n": n, "trials_gflops": rates, "gflops": max(rates)}


def quadrature(model, inputs: dict, sizes: workload.Sizes, report=print) -> dict:
    """IG's median relative completeness gap per baseline, quadrature and steps.

    Skipped (available: false) when `attribute` has no `quadrature=` keyword. The shuffle
    baseline draws its permutation from a fresh generator seeded 0 at every call, so every
    quadrature and step count integrates the same path.
    """
    from probes.methods import attribution

    if "quadrature" not in inspect.signature(attribution.attribute).parameters:
        note = ("probes.methods.attribution.attribute has no quadrature= keyword: the quadrature "
                "comparison was skipped")
        report(f"  {note}")
        return {"available": False, "note": note, "points": [], "fewest_steps": {}}
    choices = tuple(getattr(attribution, "QUADRATURES", QUADRATURES))
    sub = {k: v[:sizes.quad_samples] for k, v in inputs.items()}
    points = []
    for baseline in ("zero", "shuffle"):
        for quad in choices:
            for steps in sizes.quad_steps:
                started = time.perf_counter()
                res = attribution.attribute(model, sub, rng=np.random.default_rng(0),
                                            method="integrated_gradients", baseline=baseline,
                                            steps=steps, quadrature=quad,
                                            batch_size=sizes.batch_size)
                gap = res.params.get("median_gap", float(np.median(res.completeness_gap)))
                points.append({"baseline": baseline, "quadrature": quad, "steps": steps,
                               "median_gap": float(gap),
                               "seconds": time.perf_counter() - started})
                report(f"  {baseline:8s} {quad:15s} {steps:4d} steps: median gap "
                       f"{gap:.2e}")
    fewest = {b: {q: min((p["steps"] for p in points if p["baseline"] == b
                          and p["quadrature"] == q and p["median_gap"] < GAP_TARGET),
                         default=None) for q in choices} for b in ("zero", "shuffle")}
    return {"available": True, "note": "", "samples": sizes.quad_samples, "points": points,
            "fewest_steps": fewest}


def profile(model, inputs: dict, sizes: workload.Sizes, top: int = 15) -> dict:
    """cProfile of one in-process integrated-gradients call (zero baseline, `sizes.steps`
    steps, `sizes.quad_samples` samples): where the toolkit's time goes.

    Returns:
        {"seconds": wall, "samples", "steps", "top": [{"function", "calls", "tottime",
         "cumtime"}] by own time, "text": the pstats listing}.
    """
    from probes.methods import attribution

    sub = {k: v[:sizes.quad_samples] for k, v in inputs.items()}
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    attribution.attribute(model, sub, rng=np.random.default_rng(0),
                          method="integrated_gradients", baseline="zero", steps=sizes.steps,
                          batch_size=sizes.batch_size)
    prof.disable()
    seconds = time.perf_counter() - started
    stats = pstats.Stats(prof)
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        where = f"{path.split('site-packages/')[-1]}:{line}({name})"
        rows.append({"function": where, "calls": calls, "tottime": tottime,
                     "cumtime": cumtime})
    rows.sort(key=lambda r: -r["tottime"])
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(top)
    return {"seconds": seconds, "samples": sizes.quad_samples, "steps": sizes.steps,
            "top": rows[:top], "text": text.getvalue()}
