"""Gradient attribution probes, reduced per (head, input, sample) into the ProbeResult.

Methods:
  saliency              |d head / d x| (Simonyan et al., 2014)
  input_x_gradient      |x * d head / d x| (Shrikumar et al., 2016)
  integrated_gradients  (x - x') * mean over the path of d head / d x (Sundararajan et al.,
                        2017); Gauss-Legendre nodes by default (or Riemann midpoints or
                        trapezoid), steps doubled until the median relative completeness gap
                        is under `tolerance`
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
from probes.forward import compiled_forward, run_all
from probes.gradients import (
    QUADRATURES,
    embed,
    embedding_surrogate,
    evaluate_paths,
    path_function,
)
from probes.gradients import quadrature as quadrature_nodes
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


def attribute(model, inputs, *, rng: np.random.Generator,
              method: str = "integrated_gradients", space: str = "logit",
              baseline="zero", steps: int | None = None, quadrature: str = "gauss_legendre",
              noise_samples: int = 16, noise_scale: float = 0.15, tolerance: float = 0.01,
              max_steps: int = 512, background=None, batch_size: int = 256,
              seed: int | None = None, sample_ids=None, model_name: str | None = None
              ) -> ProbeResult:
    """Gradient attributions of every head to every input.

    Args:
        model: a functional Keras model. Integer (token) inputs feeding one Embedding call site
            are attributed at that call site's output (see probes.gradients).
        inputs: {input name: (N, ...) array} or a list in model order.
        rng: source of the smoothgrad noise and the shuffle baseline's permutation.
        method: one of METHODS.
        space: "logit" (pre-activation of sigmoid/softmax heads) or "probability".
        baseline: integrated gradients' x': "zero", "mean" (over the background), "shuffle"
            (each sample's own time steps in one random order), or {input name: array} of
            one sample's shape or of the inputs' shape (token ids for token inputs).
        steps: integrated gradients' path nodes; None doubles from 8 up to `max_steps` until
            the median relative completeness gap is below `tolerance`.
        quadrature: the path integral's nodes: "gauss_legendre", "riemann" (midpoints) or
            "trapezoid".
        noise_samples, noise_scale: smoothgrad's copies and noise std as a fraction of the
            input's range over the background.
        batch_size: rows per gradient pass (samples x steps); bounds memory.
    Returns:
        A ProbeResult with effects (H, I, N) = sum |attribution|, a profile (H, I, N, T) of
        sum |attribution| per time step when the inputs share a time axis; for integrated
        gradients also `signed` (H, I, N) and `completeness_gap` (H, N), relative.
    """
    if method not in METHODS:
        raise ValueError(f"Expected a method in {list(METHODS)}; received {method!r}")
    if space not in SPACES:
        raise ValueError(f"Expected a space in {list(SPACES)}; received {space!r}")
    if quadrature not in QUADRATURES:
        raise ValueError(f"Expected a quadrature in {list(QUADRATURES)}; "
                         f"received {quadrature!r}")
    if steps is not None and not 1 <= int(steps) <= 100000:
        raise ValueError(f"Expected steps in [1, 100000]; received {steps}")
    names = pdata.input_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    n = xs[0].shape[0]
    bg = xs if background is None else pdata.canonical_inputs(model, background, "background")
    ids = pdata.canonical_sample_ids(sample_ids, n, len(bg[0]))
    surrogate = embedding_surrogate(model, names)
    base = None
    if method == "integrated_gradients":
        base = _baseline(baseline, xs, bg, rng, names)
    for i, layer in surrogate.embedded.items():  # token ids -> embedding vectors
        xs[i] = embed(layer, xs[i])
        bg[i] = xs[i] if bg is xs else embed(layer, bg[i])
        if base is not None:
            base[i] = (np.zeros_like(xs[i]) if isinstance(baseline, str) and baseline == "zero"
                       else embed(layer, base[i]) if base[i].dtype.kind in "iu" else base[i])
    if isinstance(baseline, str) and baseline == "mean" and base is not None:
        base = _baseline("mean", xs, bg, rng, names)  # the mean in embedding space
    xs = [x if x.dtype == np.float32 else x.astype(np.float32) for x in xs]
    params = {"method": method, "space": space, "seed": seed, "batch_size": int(batch_size),
              "embedded_inputs": {names[i]: layer.name
                                  for i, layer in surrogate.embedded.items()},
              "notes": list(surrogate.notes)}
    times = {x.shape[1] if x.ndim >= 3 else None for x in xs}
    with_profile = len(times) == 1 and None not in times
    context = logit_space(model) if space == "logit" else contextlib.nullcontext(())
    with context as logit_heads:
        fn = path_function(surrogate.model, with_profile, purpose=method)
        params["logit_heads"] = list(logit_heads)
        gaps = None
        if method == "integrated_gradients":
            params["baseline"] = baseline if isinstance(baseline, str) else "array"
            red, gaps, used = _integrated(surrogate.model, fn, xs, base, steps, quadrature,
                                          tolerance, max_steps, batch_size, with_profile)
            params.update(steps=used, quadrature=quadrature, tolerance=tolerance,
                          median_gap=float(np.median(gaps)),
                          converged=bool(np.median(gaps) < tolerance),
                          samples_over_5pct=int(np.sum(gaps > 0.05)))
        else:
            red = _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size,
                         with_profile)
            if method == "smoothgrad":
                params.update(noise_samples=int(noise_samples), noise_scale=float(noise_scale))
    heads = pdata.output_names(model)
    return ProbeResult(probe="attribution", method=method, model=model_name or model.name,
                       heads=heads, inputs=names, effects=red.abs_sum,
                       structural=structure(model).reach, sample_ids=ids, params=params,
                       profile=red.profile,
                       profile_starts=np.arange(xs[0].shape[1]) if with_profile else None,
                       signed=red.signed_sum if method == "integrated_gradients" else None,
                       completeness_gap=gaps)


def _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size, with_profile):
    """saliency, input_x_gradient, smoothgrad: the gradient at x (averaged over noise)."""
    zeros = [np.zeros((1,) + x.shape[1:], np.float32) for x in xs]
    ones = [_Constant(1.0, x.shape) for x in xs]
    if method == "smoothgrad":
        sigma = [noise_scale * float(b.max() - b.min()) for b in bg]
        extras = [(rng.standard_normal((noise_samples,) + x.shape[1:]) * s).astype(np.float32)
                  for x, s in zip(xs, sigma)]  # (K, ...) the same for every sample
        k = noise_samples
    else:
        extras, k = zeros, 1
    factors = xs if method == "input_x_gradient" else ones
    return evaluate_paths(fn, xs, [_Constant(0.0, x.shape) for x in xs], extras,
                          np.zeros(k), np.full(k, 1.0 / k), factors, batch_size, with_profile)


class _Constant:
    """A read-only array of one value: slices materialise only the rows asked for, and the
    path function takes its one `row` (1, ...) and broadcasts it."""

    def __init__(self, value: float, shape: tuple):
        self.value, self.shape, self.dtype = value, shape, np.dtype(np.float32)
        self.row = np.full((1,) + tuple(shape[1:]), value, np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.full((len(range(*rows.indices(self.shape[0]))),) + self.shape[1:],
                       self.value, np.float32)


def _baseline(baseline, xs, bg, rng, names):
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"Expected a baseline in {list(BASELINES)} or arrays; "
                             f"received {baseline!r}")
        if baseline == "zero":  # one broadcast row, never an (N, ...) array of zeros
            return [_Constant(0.0, x.shape) for x in xs]
        if baseline == "mean":
            return [np.broadcast_to(np.asarray(b.mean(axis=0), np.float32), x.shape)
                    for x, b in zip(xs, bg)]
        out = []
        for x in xs:
            if x.ndim < 2:
                raise ValueError(f"Expected inputs with a time axis for the shuffle baseline; "
                                 f"received shape {x.shape}")
            perm = rng.permutation(x.shape[1])
            out.append(x[:, perm] if isinstance(x, np.ndarray) else _Permuted(x, perm))
        return out
    if isinstance(baseline, dict):
        missing = [name for name in names if name not in baseline]
        if missing:
            raise ValueError(f"Expected a baseline for every input {list(names)}; received "
                             f"none for {missing}")
        baseline = [baseline[name] for name in names]
    out = []
    for name, x, b in zip(names, xs, baseline):
        b = np.asarray(b)
        b = b.astype(x.dtype if x.dtype.kind in "iu" else np.float32)
        if b.shape == x.shape[1:]:
            b = np.broadcast_to(b, x.shape)
        if b.shape != x.shape or not np.all(np.isfinite(b)):
            raise ValueError(f"Expected a finite baseline for {name!r} of shape {x.shape[1:]} "
                             f"or {x.shape}; received {b.shape}")
        out.append(b)
    return out


PILOT = 16  # samples that choose the automatic step count before the full run


def _integrated(model, fn, xs, base, steps, quadrature, tolerance, max_steps, batch_size,
                with_profile):
    """Integrated gradients with automatic steps -> (Reduced, gaps (H, N), steps used).

    Automatic steps: double from 8 on the first PILOT samples until their median relative gap
    is under `tolerance`, then run every sample with that count (doubling again if the median
    over all samples is still above it). Every count tried is a complete rerun of the nodes.
    Doubling stops early when two doublings did not halve the median gap; the result then
    reports the gap reached (params["median_gap"]) and the caller flags it.
    """
    forward = compiled_forward(model)
    delta = _totals(forward, xs, batch_size) - _totals(forward, base, batch_size)  # (H, N)

    def run(s, rows):
        sub = [_Rows(x, rows) for x in xs]
        b = [_Rows(x, rows) for x in base]
        deltas = [_Difference(x, x0) for x, x0 in zip(sub, b)]
        extras = [np.zeros((1,) + x.shape[1:], np.float32) for x in xs]
        alphas, weights = quadrature_nodes(quadrature, s)
        red = evaluate_paths(fn, b, deltas, extras, alphas, weights, deltas, batch_size,
                             with_profile)
        d = delta[:, rows]
        # Relative gap; differences below 1e-6 (float32 noise of the outputs) are not divided.
        gaps = np.abs(red.signed_sum.sum(axis=1) - d) / np.maximum(np.abs(d), 1e-6)
        return red, gaps

    n = xs[0].shape[0]
    everything = slice(0, n)
    if steps:
        red, gaps = run(int(steps), everything)
        return red, gaps, int(steps)
    s = 8
    if n > PILOT:
        history = []
        while s < max_steps:
            history.append(np.median(run(s, slice(0, PILOT))[1]))
            if history[-1] < tolerance or _stalled(history):
                break
            s *= 2
    history = []
    while True:
        red, gaps = run(s, everything)
        history.append(np.median(gaps))
        if history[-1] < tolerance or s >= max_steps or _stalled(history):
            return red, gaps, s
        s *= 2


def _stalled(medians) -> bool:
    """True when two doublings in a row did not halve the median gap: the path integral is
    not converging (a path through sharp features), so more steps would only cost time."""
    return len(medians) >= 3 and medians[-1] > 0.5 * medians[-3]


class _Rows:
    """Rows [start, stop) of an array, sliced lazily."""

    def __init__(self, x, rows: slice):
        self.x, self.start = x, rows.start
        self.shape = (rows.stop - rows.start,) + tuple(x.shape[1:])
        if hasattr(x, "row"):
            self.row = x.row

    def __getitem__(self, rows: slice):
        return self.x[self.start + rows.start:self.start + rows.stop]


class _Permuted:
    """x with its time axis permuted, computed per slice of rows."""

    def __init__(self, x, perm):
        self.x, self.perm, self.shape, self.dtype = x, perm, x.shape, np.dtype(np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.x[rows], np.float32)[:, self.perm]


class _Difference:
    """x - baseline, computed per slice."""

    def __init__(self, x, b):
        self.x, self.b, self.shape = x, b, x.shape

    def __getitem__(self, rows: slice) -> np.ndarray:
        return (np.asarray(self.x[rows], np.float32) - np.asarray(self.b[rows], np.float32))


def _totals(forward, xs, batch_size) -> np.ndarray:
    """(H, N) each head's output summed over its units, in fixed-size chunks."""
    return np.stack([o.sum(axis=1) for o in run_all(forward, xs, batch_size)])
