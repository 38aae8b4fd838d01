"""Gradient attribution probes, reduced per (head, input, sample) into the ProbeResult.

Methods:
  saliency              |d head / d x| (Simonyan et al., 2014)
  input_x_gradient      |x * d head / d x| (Shrikumar et al., 2016)
  integrated_gradients  (x - x') * mean over the path of d head / d x (Sundararajan et al.,
                        2017); midpoint Riemann sum, steps doubled until the median relative
                        completeness gap is under `tolerance`
  smoothgrad            |mean over noisy copies of d head / d x| (Smilkov et al., 2017)
Each sample's score for an input is the sum of |attribution| over that input's elements (and,
for integrated gradients, also the signed sum). Heads are attributed in logit space by default
(the pre-activation of a sigmoid or softmax output layer): the sigmoid saturates and hides
dependencies.
"""

from __future__ import annotations

import contextlib

import numpy as np

from probes import data as pdata
from probes.forward import chunks, pad_rows
from probes.graph import structure
from probes.result import ProbeResult

METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
BASELINES = ("zero", "mean", "shuffle")
SPACES = ("logit", "probability")
SQUASHING = ("sigmoid", "softmax")


@contextlib.contextmanager
def logit_space(model):
    """Temporarily gives each output layer with a sigmoid/softmax activation a linear one.

    Yields the head names switched to logits; restores every activation in `finally`.
    """
    import keras

    switched = []
    try:
        for head, tensor in zip(pdata.output_names(model), model.outputs):
            layer = tensor._keras_history.operation
            act = getattr(layer, "activation", None)
            if getattr(act, "__name__", None) in SQUASHING:
                switched.append((layer, act, head))
                layer.activation = keras.activations.linear
        yield tuple(head for _, _, head in switched)
    finally:
        for layer, act, _ in switched:
            layer.activation = act


def _gradient_function(model):
    """tf.function: inputs (list of (rows, ...)) -> (outputs H x (rows, C), grads H x I)."""
    import tensorflow as tf

    single = len(model.inputs) == 1

    @tf.function(reduce_retracing=True)
    def run(xs):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xs)
            outs = model(xs[0] if single else xs, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            totals = [tf.reduce_sum(o) for o in outs]  # rows are independent samples
        grads = []
        for total in totals:
            g = tape.gradient(total, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            grads.append(g)
        del tape
        return outs, grads

    return run


def _evaluate(fn, xs, batch_size):
    """Outputs H x (rows, C) float64 and grads H x I x (rows, ...) float64 over fixed chunks."""
    n = xs[0].shape[0]
    outs, grads = None, None
    for start, stop in chunks(n, batch_size):
        o, g = fn([pad_rows(x[start:stop], batch_size) for x in xs])
        o = [np.asarray(t, np.float64).reshape(batch_size, -1)[:stop - start] for t in o]
        g = [[np.asarray(t, np.float64)[:stop - start] for t in gh] for gh in g]
        if outs is None:
            outs = [[t] for t in o]
            grads = [[[t] for t in gh] for gh in g]
        else:
            for h, t in enumerate(o):
                outs[h].append(t)
            for h, gh in enumerate(g):
                for i, t in enumerate(gh):
                    grads[h][i].append(t)
    return ([np.concatenate(t) for t in outs],
            [[np.concatenate(t) for t in gh] for gh in grads])


def _reduce(attr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, ...) attributions -> (sum |a|, sum a) per sample."""
    flat = attr.reshape(attr.shape[0], -1)
    return np.abs(flat).sum(axis=1), flat.sum(axis=1)


def attribute(model, inputs, *, rng: np.random.Generator,
              method: str = "integrated_gradients", space: str = "logit",
              baseline="zero", steps: int | None = None, noise_samples: int = 16,
              noise_scale: float = 0.15, tolerance: float = 0.01, max_steps: int = 512,
              background=None, batch_size: int = 256, seed: int | None = None,
              sample_ids=None, model_name: str | None = None) -> ProbeResult:
    """Gradient attributions of every head to every input.

    Args:
        model: a functional Keras model with float inputs.
        inputs: {input name: (N, ...) array} or a list in model order.
        rng: source of the smoothgrad noise and the shuffle baseline's permutation.
        method: one of METHODS.
        space: "logit" (pre-activation of sigmoid/softmax heads) or "probability".
        baseline: integrated gradients' x': "zero", "mean" (over the background), "shuffle"
            (each sample's own time steps in one random order), or {input name: array} of
            one sample's shape or of the inputs' shape.
        steps: integrated gradients' path steps; None doubles from 16 up to `max_steps` until
            the median relative completeness gap is below `tolerance`.
        noise_samples, noise_scale: smoothgrad's copies and noise std as a fraction of the
            input's range over the background.
        batch_size: rows per gradient pass (samples x steps); bounds memory.
    Returns:
        A ProbeResult with effects (H, I, N) = sum |attribution|; for integrated gradients
        also `signed` (H, I, N) and `completeness_gap` (H, N), relative.
    """
    if method not in METHODS:
        raise ValueError(f"Expected a method in {list(METHODS)}; received {method!r}")
    if space not in SPACES:
        raise ValueError(f"Expected a space in {list(SPACES)}; received {space!r}")
    names = pdata.input_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    for name, x in zip(names, xs):
        if x.dtype.kind in "iu":
            raise ValueError(f"Expected float inputs for gradients; received integer input "
                             f"{name!r} (attribution of token inputs is not supported yet: "
                             "use probe ablate)")
    n = xs[0].shape[0]
    bg = xs if background is None else pdata.canonical_inputs(model, background, "background")
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if steps is not None and not 1 <= int(steps) <= 100000:
        raise ValueError(f"Expected steps in [1, 100000]; received {steps}")
    params = {"method": method, "space": space, "seed": seed, "batch_size": int(batch_size)}
    context = logit_space(model) if space == "logit" else contextlib.nullcontext(())
    with context as logit_heads:
        fn = _gradient_function(model)
        params["logit_heads"] = list(logit_heads)
        signed = gaps = None
        if method == "integrated_gradients":
            base = _baseline(baseline, xs, bg, rng, names)
            params["baseline"] = baseline if isinstance(baseline, str) else "array"
            effects, signed, gaps, used = _integrated(fn, xs, base, steps, tolerance,
                                                      max_steps, batch_size)
            params.update(steps=used, tolerance=tolerance,
                          median_gap=float(np.median(gaps)),
                          samples_over_5pct=int(np.sum(gaps > 0.05)))
        else:
            effects = _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size)
            if method == "smoothgrad":
                params.update(noise_samples=int(noise_samples), noise_scale=float(noise_scale))
    heads = pdata.output_names(model)
    return ProbeResult(probe="attribution", method=method, model=model_name or model.name,
                       heads=heads, inputs=names, effects=effects,
                       structural=structure(model).reach, sample_ids=ids, params=params,
                       signed=signed, completeness_gap=gaps)


def _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size):
    """saliency, input_x_gradient, smoothgrad -> effects (H, I, N)."""
    if method == "smoothgrad":
        sigma = [noise_scale * float(b.max() - b.min()) for b in bg]
        draws = [rng.standard_normal((noise_samples,) + x.shape[1:]).astype(np.float32) * s
                 for x, s in zip(xs, sigma)]  # (K, ...) the same for every sample
        total = None
        for k in range(noise_samples):
            _, g = _evaluate(fn, [x + d[k] for x, d in zip(xs, draws)], batch_size)
            total = g if total is None else [[a + b for a, b in zip(ta, tb)]
                                             for ta, tb in zip(total, g)]
        grads = [[t / noise_samples for t in th] for th in total]
    else:
        _, grads = _evaluate(fn, xs, batch_size)
    out = np.zeros((len(grads), len(xs), xs[0].shape[0]))
    for h, gh in enumerate(grads):
        for i, (g, x) in enumerate(zip(gh, xs)):
            out[h, i] = _reduce(g * x if method == "input_x_gradient" else g)[0]
    return out


def _baseline(baseline, xs, bg, rng, names):
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"Expected a baseline in {list(BASELINES)} or arrays; "
                             f"received {baseline!r}")
        if baseline == "zero":
            return [np.zeros_like(x) for x in xs]
        if baseline == "mean":
            return [np.broadcast_to(b.mean(axis=0), x.shape).astype(np.float32)
                    for x, b in zip(xs, bg)]
        out = []
        for x in xs:
            if x.ndim < 2:
                raise ValueError(f"Expected inputs with a time axis for the shuffle baseline; "
                                 f"received shape {x.shape}")
            out.append(x[:, rng.permutation(x.shape[1])])
        return out
    if isinstance(baseline, dict):
        missing = [name for name in names if name not in baseline]
        if missing:
            raise ValueError(f"Expected a baseline for every input {list(names)}; received "
                             f"none for {missing}")
        baseline = [baseline[name] for name in names]
    arrays = [np.asarray(b, np.float32) for b in baseline]
    out = []
    for name, x, b in zip(names, xs, arrays):
        if b.shape == x.shape[1:]:
            b = np.broadcast_to(b, x.shape)
        if b.shape != x.shape or not np.all(np.isfinite(b)):
            raise ValueError(f"Expected a finite baseline for {name!r} of shape {x.shape[1:]} "
                             f"or {x.shape}; received {b.shape}")
        out.append(b)
    return out


def _integrated(fn, xs, base, steps, tolerance, max_steps, batch_size):
    """Integrated gradients with automatic steps -> (effects, signed, gaps, steps used)."""
    f_x, _ = _evaluate(fn, xs, batch_size)
    f_b, _ = _evaluate(fn, base, batch_size)
    delta = np.stack([(a - b).sum(axis=1) for a, b in zip(f_x, f_b)])  # (H, N)
    s = int(steps) if steps else 16
    while True:
        effects, signed = _ig_pass(fn, xs, base, s, batch_size)
        # Relative gap; differences below 1e-6 (float32 noise of the outputs) are not divided.
        gaps = np.abs(signed.sum(axis=1) - delta) / np.maximum(np.abs(delta), 1e-6)  # (H, N)
        if steps or np.median(gaps) < tolerance or s >= max_steps:
            return effects, signed, gaps, s
        s *= 2


def _ig_pass(fn, xs, base, steps, batch_size):
    """One midpoint Riemann sum: all steps of a chunk of samples in one batch."""
    n = xs[0].shape[0]
    per = max(1, batch_size // steps)  # samples per gradient pass
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)  # (S,)
    effects = signed = None
    for start, stop in chunks(n, per):
        b = stop - start
        path = []
        for x, x0 in zip(xs, base):
            xb, x0b = x[start:stop], x0[start:stop]
            shape = (1, steps) + (1,) * (x.ndim - 1)
            pts = x0b[:, None] + alphas.reshape(shape) * (xb - x0b)[:, None]  # (b, S, ...)
            path.append(pts.reshape((b * steps,) + x.shape[1:]))
        _, grads = _evaluate(fn, path, max(batch_size, steps))
        if effects is None:
            effects = np.zeros((len(grads), len(xs), n))
            signed = np.zeros_like(effects)
        for h, gh in enumerate(grads):
            for i, (g, x, x0) in enumerate(zip(gh, xs, base)):
                mean_g = g.reshape((b, steps) + x.shape[1:]).mean(axis=1)  # (b, ...)
                attr = (x[start:stop] - x0[start:stop]) * mean_g
                effects[h, i, start:stop], signed[h, i, start:stop] = _reduce(attr)
    return effects, signed
