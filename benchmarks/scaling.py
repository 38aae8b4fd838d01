"""Where the cost goes as work grows: probe time against samples, sequence length, heads and
inputs, each swept with everything else fixed, and a quadratic fit per sweep.

Probes run in-process through `probes.run.registry.PROBES`; each point gets one warm-up call on
the samples of one pass (the same traced shapes; not with --quick), then `sizes.repeats` timed calls (the median is
kept). The heads and inputs sweeps use synthetic models of the question's shape: one shared
LSTM over k inputs, the encodings concatenated, h sigmoid heads on top.

The work itself: integrated gradients computes samples x steps rows, each one LSTM call per
input forward and one backward per head: linear in samples, length, heads and inputs.
Ablation runs samples x (1 + inputs x permutations) forward rows of every input: linear in
samples and length, flat in heads, but quadratic in inputs (inputs ablations, each through
all inputs' LSTM calls) unless the unablated inputs' branches are computed once and reused;
the baseline of benchmarks/baseline.py does the same work.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks import workload

AXES = ("samples", "seq_len", "heads", "inputs")
PROBES = ("ablation/shuffle", "attribution/integrated_gradients")
QUADRATIC_LIMIT = 0.10  # share of the time at the largest x above which growth is not linear


def synthetic(inputs: int, heads: int, seq_len: int, features: int, units: int):
    """A functional model: inputs x_1..x_k (T, F) -> shared LSTM(U) -> concat -> h heads."""
    import keras
    from keras import layers

    xs = [keras.Input((seq_len, features), name=f"x_{j + 1}") for j in range(inputs)]
    lstm = layers.LSTM(units, name="shared_lstm",
                       kernel_initializer=keras.initializers.GlorotUniform(seed=0),
                       recurrent_initializer=keras.initializers.Orthogonal(seed=1))
    encoded = [lstm(x) for x in xs]  # k x (batch, U)
    merged = encoded[0] if inputs == 1 else layers.concatenate(encoded, name="merged")
    outs = [layers.Dense(1, activation="sigmoid", name=f"head_{h + 1}",
                         kernel_initializer=keras.initializers.GlorotUniform(seed=2 + h))(merged)
            for h in range(heads)]
    return keras.Model(xs, outs, name=f"synthetic_{inputs}x{heads}")


def _point(axis: str, x: int, concat_model, data: dict, sizes: workload.Sizes):
    """(model, {input name: (N, T, F)}) for one point of a sweep."""
    tweets = [data["tweet_a"], data["tweet_b"]]
    n = sizes.scale_n
    if axis == "samples":
        return concat_model, {k: v[:x] for k, v in data.items()}
    if axis == "seq_len":
        from mtl_models.variants import build_model

        model = build_model("concat", seq_len=x, features=sizes.features, units=sizes.units)
        return model, {k: v[:n, -x:] for k, v in data.items()}  # pre-padded: text at the end
    k, h = (2, x) if axis == "heads" else (x, 2)
    model = synthetic(k, h, sizes.seq_len, sizes.features, sizes.units)
    # Input j: the tweets of side j % 2, rolled by j // 2 samples so that inputs differ.
    return model, {f"x_{j + 1}": np.roll(tweets[j % 2][:n], j // 2, axis=0) for j in range(k)}


def _params(probe: str, sizes: workload.Sizes) -> dict:
    if probe == "ablation/shuffle":
        return {"permutations": sizes.scale_permutations, "batch_size": sizes.batch_size}
    return {"steps": sizes.scale_steps, "baseline": "zero", "batch_size": sizes.batch_size}


def _pass_samples(probe: str, n: int, params: dict) -> int:
    """Samples in one pass of the timed call, so that a warm-up on that many samples traces
    the same shapes (gradient functions are traced per shape)."""
    from probes.engine.gradients import samples_per_pass

    return samples_per_pass(n, params["batch_size"], params.get("steps", 1))


def sweep(concat_model, data: dict, sizes: workload.Sizes, report=print) -> list[dict]:
    """Times every probe at every point.

    Returns:
        [{"axis", "probe", "x", "seconds" (wall), "cpu_seconds" (user + system, all
          threads; medians over repeats), "repeats", "cpu_repeats"}].
    """
    from probes.run.registry import PROBES as REGISTRY

    values = {"samples": sizes.scale_samples, "seq_len": sizes.scale_seq_len,
              "heads": sizes.scale_heads, "inputs": sizes.scale_inputs}
    points = []
    for axis in AXES:
        for x in values[axis]:
            model, inputs = _point(axis, x, concat_model, data, sizes)
            for probe in PROBES:
                run = REGISTRY[probe]
                params = _params(probe, sizes)
                if sizes.warmup:  # traces outside the timing: one pass's worth of samples
                    rows = _pass_samples(probe, len(next(iter(inputs.values()))), params)
                    warm = {k: v[:rows] for k, v in inputs.items()}
                    run(model, warm, rng=np.random.default_rng(0), **params)
                wall, cpu = [], []
                for _ in range(sizes.repeats):
                    started, used = time.perf_counter(), time.process_time()
                    run(model, inputs, rng=np.random.default_rng(0), **params)
                    wall.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - used)
                points.append({"axis": axis, "probe": probe, "x": int(x),
                               "seconds": statistics.median(wall),
                               "cpu_seconds": statistics.median(cpu), "repeats": wall,
                               "cpu_repeats": cpu})
                report(f"  {axis:8s} {x:4d}  {probe:33s} {points[-1]['seconds']:7.2f}s wall "
                       f"{points[-1]['cpu_seconds']:7.2f}s CPU")
    return points


def fit(xs, seconds, spread: float | None = None) -> dict:
    """Least squares t = a + b x + c x^2 (and t = a1 + b1 x), and a verdict on the growth.

    Args:
        xs, seconds: (P,) points.
        spread: the relative spread of repeated timings ((max - min) / median, the median over
            points), or None with one timing per point.
    Returns:
        {"a", "b", "c", "x_max", "quadratic_share": c x_max^2 / fitted t(x_max), "spread",
         "linear_a", "linear_b", "linear": growth is "flat" or "linear",
         "growth": "flat" (the times differ by less than QUADRATIC_LIMIT, or twice the
         spread, of their median: no growth to fit, however the fit splits it), "linear"
         (|quadratic_share| < QUADRATIC_LIMIT), "within noise" (not, but under twice the
         spread: the timings cannot tell), else "superlinear" (c > 0: the x^2 term of a bug,
         or of work that grows as x^2) or "sublinear" (c < 0: a fixed cost amortised)}.
    """
    x = np.asarray(xs, np.float64)
    t = np.asarray(seconds, np.float64)
    design = np.stack([np.ones_like(x), x, x ** 2], axis=1)  # (P, 3)
    (a, b, c), *_ = np.linalg.lstsq(design, t, rcond=None)
    x_max = float(x.max())
    at_max = max(a + b * x_max + c * x_max ** 2, 1e-12)
    share = float(c * x_max ** 2 / at_max)
    (b1, a1) = np.polyfit(x, t, 1)
    noise = max(QUADRATIC_LIMIT, 2 * spread if spread is not None else 0.0)
    if (t.max() - t.min()) / max(float(np.median(t)), 1e-12) < noise:
        growth = "flat"
    elif abs(share) < QUADRATIC_LIMIT:
        growth = "linear"
    elif spread is not None and abs(share) < 2 * spread:
        growth = "within noise"
    else:
        growth = "superlinear" if c > 0 else "sublinear"
    return {"a": float(a), "b": float(b), "c": float(c), "x_max": x_max,
            "quadratic_share": share, "spread": spread, "growth": growth,
            "linear": growth in ("flat", "linear"), "linear_a": float(a1),
            "linear_b": float(b1)}


def spread(times) -> float:
    """(max - min) / median of repeated timings of one point."""
    return float((max(times) - min(times)) / max(statistics.median(times), 1e-12))


def fits(points: list[dict], key: str = "cpu_seconds") -> list[dict]:
    """One fit per (axis, probe) of `key` ("cpu_seconds": steady on a shared machine, where
    other jobs stretch wall time; or "seconds")."""
    out = []
    for axis in AXES:
        for probe in PROBES:
            mine = [p for p in points if p["axis"] == axis and p["probe"] == probe]
            if len(mine) < 3:
                continue
            reps = [p["cpu_repeats" if key == "cpu_seconds" else "repeats"] for p in mine]
            noise = (statistics.median(spread(r) for r in reps)
                     if min(map(len, reps)) >= 2 else None)
            out.append({"axis": axis, "probe": probe, "time": key,
                        **fit([p["x"] for p in mine], [p[key] for p in mine], noise)})
    return out
