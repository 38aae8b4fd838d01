"""The compiled core of the gradient probes: averaged gradients along paths, reduced in-graph.

One compiled function evaluates, for a chunk of b samples and K points per sample, every
head's gradient with respect to every input at all b * K points in one batch (one forward
pass, one backward per score row), averages them over the points with quadrature weights,
multiplies by the method's factor and reduces to per-sample sums before anything leaves the
graph. Memory is bounded by the rows per pass (b * K); nothing of size (N, T, F) is ever copied
to numpy.

Token inputs (ids into an Embedding, whatever their dtype) have no gradient; they are attributed
in embedding space: the graph is run with their Embedding call site given the point on the path
(probes.model.graphrun), while the mask, if any, is still computed from the tokens.

The algorithm is written once, in keras.ops; the Keras backend compiles it and takes the
gradients (probes.engine.backends: tf.function and a tape, jax.jit and jax.vjp, or PyTorch's
autograd).
"""

from __future__ import annotations

import dataclasses

import numpy as np

QUADRATURES = ("riemann", "trapezoid", "gauss_legendre")


def quadrature(name: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights summing to 1 for the path integral over alpha.

    riemann: midpoints (k + 1/2) / S; trapezoid: S nodes including both ends; gauss_legendre:
    Gauss-Legendre nodes mapped from [-1, 1] (exact for polynomials of degree 2S - 1).
    """
    if name == "riemann":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if name == "trapezoid":
        if steps == 1:
            return np.array([0.5]), np.array([1.0])
        w = np.full(steps, 1.0 / (steps - 1))
        w[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), w
    if name == "gauss_legendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return (x + 1) / 2, w / 2
    raise ValueError(f"Expected a quadrature in {list(QUADRATURES)}; received {name!r}")


@dataclasses.dataclass(frozen=True)
class Reduced:
    """Per-sample reductions of attributions for one chunk (numpy, float64).

    abs_sum, signed_sum: (H, I, b); profile: (H, I, b, T) sum of |attribution| per time step
    (None when the inputs have no common time axis); maps: per input, (H, b, ...) the signed
    attribution summed over the last (feature) axis for inputs of 3 or more axes (one value
    per time step: a one-hot or embedded token's attribution), whole for (N, D) inputs; None
    unless asked for.
    """

    abs_sum: np.ndarray
    signed_sum: np.ndarray
    profile: np.ndarray | None
    maps: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a path function computes, fixed when it is traced.

    tokens: per input, None, or the (id(layer), call index) of the Embedding call site whose
        output is the input's point (the graph input then carries the token ids, which every
        other op, such as a mask, reads). rows: per score row, the index of its head.
    linear: ids of output layers read before their activation (logit space).
    masks: the graph computes boolean masks from its inputs (`Masking`): hold them at the
        sample's.
    """

    tokens: tuple
    rows: tuple
    linear: frozenset = frozenset()
    masks: bool = False


def graph_outputs(model, plan: Plan, points, tokens, k, originals=None, replaced=None):
    """Every head's output (b * K, C) at the points; token inputs' graph inputs are their ids
    repeated K times, their Embedding call sites given the points. `originals` (per input,
    (b, ...) samples, or None) are what masks are computed from, repeated K times: a mask
    stays that of the sample all along its path. `replaced`: call sites computed by a
    function instead (probes.model.graphrun.run_graph; the one-hot path's projections)."""
    from keras import ops

    from probes.model.graphrun import run_graph

    feeds, given, fixed = [], {}, []
    for i, (p, site) in enumerate(zip(points, plan.tokens)):
        if site is None:
            feeds.append(p)
            if originals is not None:
                fixed.append(ops.repeat(originals[i], k, axis=0))
        else:
            feeds.append(ops.repeat(tokens[i], k, axis=0))  # (b * K, T) ids, sample-major
            fixed.append(feeds[-1])
            given[site] = p

    def cast(xs):
        return [x if x.dtype == t.dtype else ops.cast(x, t.dtype)
                for x, t in zip(xs, model.inputs)]

    return run_graph(model, cast(feeds), given=given, linear=plan.linear,
                     fixed=cast(fixed) if originals is not None and plan.masks else None,
                     replaced=replaced)


def path_function(model, plan: Plan, with_profile: bool, purpose: str = "",
                  with_maps: bool = False):
    """A PathFunction(starts, deltas, extras, alphas, weights, factors, tokens, selectors) ->
    Reduced tensors (and the signed maps with `with_maps`).

    For input i with chunk rows (b, ...): points_k = starts + alphas[k] * deltas + extras[k]
    (extras: (K, ...) the same offset for every sample); for score row r of head h, the score
    is sum over units of selectors[r] (b, C) * head output; the averaged gradient
    g = sum_k weights[k] * d score / d points_k; the attribution factors * g; reduced over
    every axis but the first (and, for the profile, but the first two).

    One function per model, plan and `purpose` (e.g. the method), traced per chunk shape: a
    second shape makes TensorFlow trace it once more with open shapes, which then serves all
    others.
    """
    from probes.engine.forward import cached

    return cached(model, ("paths", plan, with_profile, purpose, with_maps),
                  lambda: PathFunction(model, plan, with_profile, with_maps))


class PathFunction:
    """The compiled path function and what its traces found: `disconnected` holds the (score
    row, input) pairs whose gradient does not exist (TensorFlow returned None), which the
    caller checks against the graph."""

    def __init__(self, model, plan: Plan, with_profile: bool, with_maps: bool = False):
        self.disconnected: set[tuple[int, int]] = set()
        self.with_maps = with_maps
        self.run = _compile_paths(model, plan, with_profile, self.disconnected, with_maps)

    def __call__(self, *args):
        from probes.engine import devices

        # per-sample: starts, deltas, factors, tokens, selectors; shared: extras, alphas,
        # weights. Outputs' sample axes: abs_sums, signed, profile (R, I, b, ...), maps (R, b, ...)
        return devices.run(self.run, args, split=(True, True, False, False, False, True, True,
                                                  True), axes=(2, 2, 2, 1))


def _compile_paths(model, plan: Plan, with_profile: bool, disconnected: set,
                   with_maps: bool = False):
    from keras import ops

    from probes.engine import backends

    backend = backends.get()

    def run(starts, deltas, extras, alphas, weights, factors, tokens, selectors):
        k = ops.shape(alphas)[0]
        points, sizes = [], []
        for s, d, e in zip(starts, deltas, extras):
            b = _larger(ops.shape(s)[0], ops.shape(d)[0])  # a (1, ...) row broadcasts
            sizes.append(b)
            rest = tuple(ops.shape(s)[1:])
            a = ops.reshape(alphas, (1, k) + (1,) * len(rest))
            p = s[:, None] + a * d[:, None] + e[None]  # (b, K, ...)
            points.append(ops.reshape(p, (b * k,) + rest))  # (b * K, ...)
        # The sample itself: the end of an integrated-gradients path, or the point of the
        # local methods (whose deltas are 0); masks are computed from it.
        originals = ([s + d for s, d in zip(starts, deltas)] if plan.masks else None)

        def totals(points):
            outs = graph_outputs(model, plan, points, tokens, k, originals)
            # rows are independent samples: the sum's gradient is each row's own gradient
            return [ops.sum(ops.reshape(outs[h], (ops.shape(outs[h])[0], -1))
                            * ops.repeat(sel, k, axis=0))
                    for h, sel in zip(plan.rows, selectors)]

        _, row_grads = backend.row_gradients(totals, points)
        abs_sums, signed_sums, profiles = [], [], []
        maps = [[] for _ in starts]  # per input, per row (b, ...)
        for r, grads in enumerate(row_grads):
            row_abs, row_signed, row_prof = [], [], []
            for i, (g, s, f, b) in enumerate(zip(grads, starts, factors, sizes)):
                shape = (b, k) + tuple(ops.shape(s)[1:])
                if g is None:  # no gradient: recorded at trace time, zeros for the shapes
                    disconnected.add((r, i))
                    g = ops.zeros(shape)
                g = ops.reshape(g, shape)  # (b, K, ...)
                g = ops.tensordot(g, weights, axes=([1], [0]))  # (b, ...)
                a = g * f  # f: (b, ...) or a (1, ...) row
                flat = ops.reshape(a, (ops.shape(a)[0], -1))
                row_abs.append(ops.sum(ops.abs(flat), axis=1))
                row_signed.append(ops.sum(flat, axis=1))
                if with_profile:
                    t = ops.reshape(ops.abs(a), (ops.shape(a)[0], ops.shape(a)[1], -1))
                    row_prof.append(ops.sum(t, axis=2))  # (b, T)
                if with_maps:  # (b, T, ...) without the feature axis, or (b, D) whole
                    maps[i].append(ops.sum(a, axis=-1) if len(s.shape) >= 3 else a)
            abs_sums.append(ops.stack(row_abs))
            signed_sums.append(ops.stack(row_signed))
            if with_profile:
                profiles.append(ops.stack(row_prof))
        prof = ops.stack(profiles) if with_profile else ops.zeros((0,))
        return (ops.stack(abs_sums), ops.stack(signed_sums), prof,
                tuple(ops.stack(m) for m in maps) if with_maps else ())

    return backend.compile(run, model)


def _larger(a, b):
    """max(a, b) of two sizes, each an int or (TensorFlow, an open axis) a scalar tensor."""
    from keras import ops

    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return ops.maximum(a, b)


def points_forward(model, plan: Plan):
    """A compiled (points, tokens, selectors, originals) -> per score row (b,) scores at the
    points (one node per sample), masks computed from `originals`: the endpoints of an
    integrated-gradients path, without gradients."""
    from probes.engine.forward import cached

    return cached(model, ("points", plan), lambda: _compile_points(model, plan))


def _compile_points(model, plan: Plan):
    from keras import ops

    from probes.engine import backends

    def run(points, tokens, selectors, originals):
        outs = graph_outputs(model, plan, points, tokens, 1, originals if plan.masks else None)
        return ops.stack([ops.sum(ops.reshape(outs[h], (ops.shape(outs[h])[0], -1)) * sel,
                                  axis=1)
                          for h, sel in zip(plan.rows, selectors)])  # (R, b)

    run = backends.get().compile(run, model)

    def scores(points, tokens, selectors, originals):  # split across probes.engine.devices.use's
        from probes.engine import devices

        return devices.run(run, (points, tokens, selectors, originals), split=(True,) * 4,
                           axes=1)

    return scores


def samples_per_pass(n: int, rows: int, nodes: int) -> int:
    """Samples in each pass of `evaluate_paths` (its chunk width): at most max(1, rows //
    nodes), in near-equal chunks of the n samples."""
    from probes.engine.forward import chunk_width

    return chunk_width(n, max(1, rows // nodes))


def evaluate_paths(fn, starts, deltas, extras, alphas, weights, factors, rows: int,
                   with_profile: bool, tokens, selectors, ids=None,
                   total: int | None = None) -> Reduced:
    """Runs `fn` over chunks of samples so that each pass has at most `rows` rows.

    Args:
        starts, deltas, factors: per input (N, ...) float32 arrays (or sliceable), or an
            object whose `row` is a (1, ...) array that every sample shares (a constant).
        extras: per input (K, ...) or (1, ...) float32 offsets, the same for every sample.
        alphas, weights: (K,) nodes and weights.
        rows: pass size; samples per pass at most max(1, rows // K), in near-equal chunks
            padded to one fixed shape (see probes.engine.forward.chunks).
        tokens: per input, (N, ...) int32 token ids for a token input, else None.
        selectors: per score row, (N, C) float32 weights of the head's units.
        ids, total: the samples' rows among `total` (default: 0..N-1 of N): passes laid
            out as a run over all `total` lays them out (probes.engine.forward.layout), so a
            subset's rows equal the full run's bit for bit.
    """
    from probes.engine.forward import layout, place

    n = starts[0].shape[0]
    if ids is None:
        ids, total = np.arange(n), n
    most = max(1, rows // len(alphas))
    alphas = np.asarray(alphas, np.float32)
    weights = np.asarray(weights, np.float32)
    outs = []
    extras = [np.asarray(e, np.float32) for e in extras]
    no_tokens = np.zeros((0,), np.int32)
    for p in layout(ids, total, most):
        start, stop, at = p.start, p.stop, p.offset

        def cut(arrays, p=p, dtype=np.float32):
            return [x.row if hasattr(x, "row") else
                    place(np.asarray(x[p.start:p.stop], dtype), p) for x in arrays]

        ds = cut(deltas)
        given = [no_tokens if t is None else cut([t], dtype=np.int32)[0] for t in tokens]
        a, s, prof, m = fn(cut(starts), ds, extras, alphas, weights,
                           ds if factors is deltas else cut(factors), given, cut(selectors))
        real = slice(at, at + stop - start)
        outs.append((np.asarray(a, np.float64)[..., real],
                     np.asarray(s, np.float64)[..., real],
                     np.asarray(prof, np.float64)[:, :, real] if with_profile else None,
                     [np.asarray(x, np.float64)[:, real] for x in m]))
    with_maps = getattr(fn, "with_maps", False)
    return Reduced(abs_sum=np.concatenate([o[0] for o in outs], axis=2),
                   signed_sum=np.concatenate([o[1] for o in outs], axis=2),
                   profile=(np.concatenate([o[2] for o in outs], axis=2)
                            if with_profile else None),
                   maps=(tuple(np.concatenate([o[3][i] for o in outs], axis=1)
                               for i in range(len(starts))) if with_maps else None))
