"""The compiled core of the gradient probes: averaged gradients along paths, reduced in-graph.

One tf.function evaluates, for a chunk of b samples and K points per sample, every head's
gradient with respect to every input at all b * K points in one batch (one persistent tape),
averages them over the points with quadrature weights, multiplies by the method's factor and
reduces to per-sample sums before anything leaves the graph. Memory is bounded by the rows per
pass (b * K); nothing of size (N, T, F) is ever copied to numpy.

Token inputs (integers into an Embedding) have no gradient; `embedding_surrogate` rebuilds the
model from the output of each such input's own Embedding call site, so they are attributed in
embedding space.
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
    (None when the inputs have no common time axis).
    """

    abs_sum: np.ndarray
    signed_sum: np.ndarray
    profile: np.ndarray | None


def path_function(model, with_profile: bool, purpose: str = ""):
    """tf.function(starts, deltas, extras, alphas, weights, factors) -> Reduced tensors.

    For input i with chunk rows (b, ...): points_k = starts + alphas[k] * deltas + extras[k]
    (extras: (K, ...) the same offset for every sample); the averaged gradient
    g = sum_k weights[k] * d head / d points_k; the attribution factors * g; reduced over every
    axis but the first (and, for the profile, but the first two).

    One function per model and `purpose` (e.g. the method), traced per chunk shape: a second
    shape makes TensorFlow trace it once more with open shapes, which then serves all others.
    """
    from probes.forward import cached

    return cached(model, ("paths", with_profile, purpose),
                  lambda: _compile_paths(model, with_profile))


def _compile_paths(model, with_profile: bool):
    import tensorflow as tf

    single = len(model.inputs) == 1

    # Traced per shape, not with an open batch axis: the shape-specific graph of the
    # recurrent gradient ran IG 12% slower when its batch axis was left open (measured).
    @tf.function(reduce_retracing=True)
    def run(starts, deltas, extras, alphas, weights, factors):
        k = tf.shape(alphas)[0]
        points, sizes = [], []
        for s, d, e in zip(starts, deltas, extras):
            b = tf.maximum(tf.shape(s)[0], tf.shape(d)[0])  # a (1, ...) row broadcasts
            sizes.append(b)
            rest = tf.shape(s)[1:]
            bcast = tf.concat([[1, k], tf.ones_like(rest)], 0)
            p = s[:, None] + tf.reshape(alphas, bcast) * d[:, None] + e[None]  # (b, K, ...)
            points.append(tf.reshape(p, tf.concat([[b * k], rest], 0)))  # (b * K, ...)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(points)
            outs = model(points[0] if single else points, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            totals = [tf.reduce_sum(o) for o in outs]  # rows are independent samples
        abs_sums, signed_sums, profiles = [], [], []
        for total in totals:
            grads = tape.gradient(total, points,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            row_abs, row_signed, row_prof = [], [], []
            for g, s, f, b in zip(grads, starts, factors, sizes):
                shape = tf.concat([[b, k], tf.shape(s)[1:]], 0)
                g = tf.reshape(g, shape)  # (b, K, ...)
                g = tf.tensordot(g, weights, axes=[[1], [0]])  # (b, ...)
                a = g * f  # f: (b, ...) or a (1, ...) row
                flat = tf.reshape(a, [tf.shape(a)[0], -1])
                row_abs.append(tf.reduce_sum(tf.abs(flat), axis=1))
                row_signed.append(tf.reduce_sum(flat, axis=1))
                if with_profile:
                    t = tf.reshape(tf.abs(a), [tf.shape(a)[0], tf.shape(a)[1], -1])
                    row_prof.append(tf.reduce_sum(t, axis=2))  # (b, T)
            abs_sums.append(tf.stack(row_abs))
            signed_sums.append(tf.stack(row_signed))
            if with_profile:
                profiles.append(tf.stack(row_prof))
        del tape
        prof = tf.stack(profiles) if with_profile else tf.zeros([0])
        return tf.stack(abs_sums), tf.stack(signed_sums), prof

    return run


def evaluate_paths(fn, starts, deltas, extras, alphas, weights, factors, rows: int,
                   with_profile: bool) -> Reduced:
    """Runs `fn` over chunks of samples so that each pass has at most `rows` rows.

    Args:
        starts, deltas, factors: per input (N, ...) float32 arrays (or sliceable), or an
            object whose `row` is a (1, ...) array that every sample shares (a constant).
        extras: per input (K, ...) or (1, ...) float32 offsets, the same for every sample.
        alphas, weights: (K,) nodes and weights.
        rows: pass size; samples per pass at most max(1, rows // K), in near-equal chunks
            padded to one fixed shape (see probes.forward.chunks).
    """
    from probes.forward import chunk_width, chunks, pad_rows

    n = starts[0].shape[0]
    k = len(alphas)
    most = max(1, rows // k)
    per = chunk_width(n, most)
    alphas = np.asarray(alphas, np.float32)
    weights = np.asarray(weights, np.float32)
    outs = []
    extras = [np.asarray(e, np.float32) for e in extras]
    for start, stop in chunks(n, most):
        def cut(arrays, start=start, stop=stop):
            return [x.row if hasattr(x, "row") else
                    pad_rows(np.asarray(x[start:stop], np.float32), per) for x in arrays]

        ds = cut(deltas)
        a, s, p = fn(cut(starts), ds, extras, alphas, weights,
                     ds if factors is deltas else cut(factors))
        b = stop - start
        outs.append((np.asarray(a, np.float64)[..., :b], np.asarray(s, np.float64)[..., :b],
                     np.asarray(p, np.float64)[:, :, :b] if with_profile else None))
    return Reduced(abs_sum=np.concatenate([o[0] for o in outs], axis=2),
                   signed_sum=np.concatenate([o[1] for o in outs], axis=2),
                   profile=(np.concatenate([o[2] for o in outs], axis=2)
                            if with_profile else None))


def _consumers(model, tensor) -> list[tuple[object, int]]:
    """(layer, call index) of every call site in the model's graph that reads `tensor`."""
    found, stack, visited = [], list(model.outputs), set()
    while stack:
        history = stack.pop()._keras_history
        key = (id(history.operation), history.node_index)
        if key in visited:
            continue
        visited.add(key)
        node = history.operation._inbound_nodes[history.node_index]
        if any(t is tensor for t in node.input_tensors):
            found.append((history.operation, history.node_index))
        stack.extend(node.input_tensors)
    return found


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A model whose token inputs are replaced by their embeddings.

    model: the rebuilt model (inputs in the original order); embedded: input index -> the
    Embedding layer whose call site output replaced it; notes: one line per replaced input.
    """

    model: object
    embedded: dict
    notes: tuple[str, ...]


def embedding_surrogate(model, names) -> Surrogate:
    """Replaces each integer input by the output of the Embedding call site that reads it."""
    import keras

    if not any("int" in str(t.dtype) for t in model.inputs):
        return Surrogate(model, {}, ())
    new_inputs, embedded, notes = [], {}, []
    for i, (name, tensor) in enumerate(zip(names, model.inputs)):
        if "int" not in str(tensor.dtype):
            new_inputs.append(tensor)
            continue
        sites = _consumers(model, tensor)
        if not sites:
            new_inputs.append(tensor)  # reaches no head: its attributions are 0
            continue
        layer, index = sites[0]
        if len(sites) != 1 or not isinstance(layer, keras.layers.Embedding):
            kinds = ", ".join(f"{type(lay).__name__} {lay.name!r}" for lay, _ in sites)
            raise ValueError(f"Expected integer input {name!r} to feed exactly one Embedding "
                             f"call site (gradients need float inputs); received {kinds}: "
                             "use probe ablate")
        if getattr(layer, "mask_zero", False):
            raise ValueError(f"Expected the Embedding {layer.name!r} of integer input {name!r} "
                             "without mask_zero (its mask would be lost in embedding space); "
                             "received mask_zero=True: use probe ablate")
        new_inputs.append(layer._inbound_nodes[index].output_tensors[0])
        embedded[i] = layer
        notes.append(f"{name}: integer tokens, attributed at the output of Embedding "
                     f"{layer.name!r} (call site {index})")
    sub = keras.Model(new_inputs, model.outputs, name=f"{model.name}_embedded")
    return Surrogate(sub, embedded, tuple(notes))


def embed(layer, tokens) -> np.ndarray:
    """(N, ...) integer tokens -> (N, ..., D) float32 rows of the Embedding's matrix."""
    table = np.asarray(layer.embeddings, np.float32)
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= table.shape[0]):
        raise ValueError(f"Expected token ids in [0, {table.shape[0]}) for Embedding "
                         f"{layer.name!r}; received ids from {tokens.min()} to {tokens.max()}")
    return table[tokens]
