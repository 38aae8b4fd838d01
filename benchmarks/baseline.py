"""Plain hand-written TensorFlow baselines: the same work as the toolkit's probes, nothing else.

Run as its own process by benchmarks/run.py, so its wall time includes Python and TensorFlow
start-up exactly like a `probe` command's. It imports only numpy, tensorflow and keras (never
the toolkit) and prints one JSON line: the mean effect per (head, input), the rows it
computed and the seconds spent after start-up.

  python benchmarks/baseline.py MODEL DATA JOB [JOB ...] [--samples N --steps S ...]
where a JOB is attribution/METHOD or ablation/MODE, the toolkit's probe names. benchmarks/run.py
gives each job its own process (one JSON line each); --quick puts all jobs in one process.

Gradient methods (heads in logit space: sigmoid output layers switched to linear):
  integrated_gradients  midpoint Riemann path from a zero baseline; every chunk of
      batch/steps samples with all its steps is one batch (rows samples x steps) through one
      tf.function that builds the path, takes one gradient per head from one persistent tape
      and reduces to sum |attr| and sum attr per sample in the graph; plus one forward pass of
      x and of x' for the completeness gap.
  saliency, input_x_gradient  one gradient per head for chunks of `batch` samples.
  smoothgrad  K noisy copies of each sample (the same K noise draws, std 0.15 x the input's
      range, for every sample) in one batch of batch/K samples x K copies.
Ablation: one tf.function forward pass (any batch size, traced once) over the unablated rows
and then every ablated copy (input i, draw k) of all samples, packed into passes of up to
`batch` rows; effect = |output change| summed over output units, averaged over draws
(shuffle: K cyclic derangements of the samples; noise: K Gaussian draws at the input's std;
zero; mean over the samples; occlusion: W windows of ceil(T/W) steps zeroed one at a time,
summed over windows).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
KNOWN = {"attribution": ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad"),
         "ablation": ("shuffle", "zero", "mean", "noise", "occlusion")}


def load(model_path, data_path, samples):
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    names = [t._keras_history.operation.name for t in model.inputs]
    with np.load(data_path) as z:
        xs = [z[name][:samples].astype(np.float32) for name in names]
    return model, xs


def to_logits(model):
    import keras

    for out in model.outputs:
        layer = out._keras_history.operation
        if getattr(getattr(layer, "activation", None), "__name__", "") in ("sigmoid", "softmax"):
            layer.activation = keras.activations.linear


def specs(xs):
    import tensorflow as tf

    return [tf.TensorSpec((None,) + x.shape[1:], tf.float32) for x in xs]


def forward_fn(model, xs):
    import tensorflow as tf

    @tf.function(input_signature=[specs(xs)])
    def forward(x):
        return tf.stack([tf.reshape(o, (tf.shape(o)[0], -1)) for o in model(x)])  # (H, b, C)

    return forward


def forward_all(forward, xs, batch):
    """(H, N, C) outputs over chunks of `batch` rows."""
    n = xs[0].shape[0]
    return np.concatenate([forward([x[s:s + batch] for x in xs]).numpy()
                           for s in range(0, n, batch)], axis=1)


def gradient(model, xs, method, steps, noise_samples, batch):
    """(abs effects (H, I, N), signed (H, I, N) or None, rows fwd+bwd, rows fwd-only, gap)."""
    import tensorflow as tf

    to_logits(model)
    n, shape = xs[0].shape[0], xs[0].shape[1:]
    expand = (1,) * len(shape)
    copies = steps if method == "integrated_gradients" else (
        noise_samples if method == "smoothgrad" else 1)
    if method == "integrated_gradients":
        alphas = tf.constant(((np.arange(steps) + 0.5) / steps).reshape((1, steps) + expand),
                             tf.float32)  # (1, S, 1, 1)
    elif method == "smoothgrad":
        rng = np.random.default_rng(0)
        offsets = [tf.constant((rng.standard_normal((1, copies) + shape) * 0.15
                                * float(x.max() - x.min())).astype(np.float32)) for x in xs]

    @tf.function(input_signature=[specs(xs)])
    def chunk(x):
        b = tf.shape(x[0])[0]
        if method == "integrated_gradients":  # x' = 0: path points alpha * x
            rows = [tf.reshape(alphas * xi[:, None], (-1,) + shape)
                    for xi in x]  # I x (b * S, T, F)
        elif method == "smoothgrad":
            rows = [tf.reshape(xi[:, None] + o, (-1,) + shape) for xi, o in zip(x, offsets)]
        else:
            rows = list(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(rows)
            totals = [tf.reduce_sum(o) for o in model(rows, training=False)]
        out_abs, out_signed = [], []
        for total in totals:
            grads = tape.gradient(total, rows)
            per_abs, per_signed = [], []
            for g, xi in zip(grads, x):
                g = tf.reduce_mean(tf.reshape(g, tf.concat([[b, copies], shape], 0)), 1)
                attr = g * xi if method in ("integrated_gradients", "input_x_gradient") else g
                axes = list(range(1, 1 + len(shape)))
                per_abs.append(tf.reduce_sum(tf.abs(attr), axes))  # (b,)
                per_signed.append(tf.reduce_sum(attr, axes))
            out_abs.append(tf.stack(per_abs))
            out_signed.append(tf.stack(per_signed))
        del tape
        return tf.stack(out_abs), tf.stack(out_signed)  # (H, I, b)

    per = max(1, batch // copies)
    parts = [chunk([x[s:s + per] for x in xs]) for s in range(0, n, per)]
    effects = np.concatenate([p[0].numpy() for p in parts], axis=2)
    signed = np.concatenate([p[1].numpy() for p in parts], axis=2)
    if method != "integrated_gradients":
        return effects, None, n * copies, 0, None
    forward = forward_fn(model, xs)
    delta = (forward_all(forward, xs, batch)
             - forward_all(forward, [np.zeros_like(x) for x in xs], batch)).sum(axis=2)
    gap = np.abs(signed.sum(axis=1) - delta) / np.maximum(np.abs(delta), 1e-6)  # (H, N)
    return effects, signed, n * copies, 2 * n, float(np.median(gap))


def ablated_copies(xs, mode, permutations, windows, rng):
    """Yields (input i, draw k, draws of i, (N, ...) ablated input i)."""
    n = xs[0].shape[0]
    for i, x in enumerate(xs):
        if mode == "shuffle":
            for k in range(permutations):
                sigma = rng.permutation(n)
                donors = sigma[(np.argsort(sigma) + 1) % n]  # cyclic derangement
                yield i, permutations, x[donors]
        elif mode == "noise":
            scale = float(x.std(dtype=np.float64))
            for k in range(permutations):
                yield i, permutations, x + (rng.standard_normal(x.shape[1:]) * scale).astype(
                    np.float32)
        elif mode == "zero":
            yield i, 1, np.zeros_like(x)
        elif mode == "mean":
            yield i, 1, np.broadcast_to(x.mean(axis=0), x.shape)
        else:  # occlusion: windows summed, so each counts with weight 1
            w = -(-x.shape[1] // windows)
            for start in range(0, x.shape[1], w):
                out = x.copy()
                out[:, start:start + w] = 0
                yield i, 1, out


def ablation(model, xs, mode, permutations, windows, batch):
    """(effects (H, I, N), forward rows)."""
    forward = forward_fn(model, xs)
    n = xs[0].shape[0]
    base = forward_all(forward, xs, batch)  # (H, N, C)
    effects = np.zeros((base.shape[0], len(xs), n))
    rows, pending = n, []

    def flush():
        packed = [np.concatenate([xs[j] if j != i else a for i, _, a in pending])
                  for j in range(len(xs))]
        out = forward_all(forward, packed, batch)  # (H, G * N, C)
        for g, (i, count, _) in enumerate(pending):
            moved = np.abs(out[:, g * n:(g + 1) * n] - base).sum(axis=2)  # (H, N)
            effects[:, i] += moved / count
        pending.clear()

    for copy in ablated_copies(xs, mode, permutations, windows, np.random.default_rng(0)):
        pending.append(copy)
        rows += n
        if (len(pending) + 1) * n > batch:
            flush()
    if pending:
        flush()
    return effects, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("jobs", nargs="+", help="attribution/METHOD or ablation/MODE")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--noise-samples", type=int, default=16)
    parser.add_argument("--permutations", type=int, default=8)
    parser.add_argument("--windows", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    for job in args.jobs:
        kind, _, method = job.partition("/")
        if method not in KNOWN.get(kind, ()):
            parser.error(f"Expected a job in {[f'{k}/{m}' for k in KNOWN for m in KNOWN[k]]}; "
                         f"received {job!r}")
        model, xs = load(args.model, args.data, args.samples)  # fresh: logits are switched
        started = time.perf_counter()
        out = {"job": job}
        if kind == "attribution":
            effects, _, fb_rows, f_rows, gap = gradient(model, xs, method, args.steps,
                                                        args.noise_samples, args.batch_size)
            out.update(fb_rows=fb_rows, f_rows=f_rows, median_gap=gap)
        else:
            effects, f_rows = ablation(model, xs, method, args.permutations, args.windows,
                                       args.batch_size)
            out.update(fb_rows=0, f_rows=f_rows)
        out.update(effect=effects.mean(axis=2).tolist(),
                   compute_seconds=time.perf_counter() - started)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
