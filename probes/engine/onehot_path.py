"""One-hot inputs through gathered kernel rows: which inputs qualify, their codes, and the
call sites that the forward pass and the gradient probes run from a projection.

An input x (N, T, F) whose rows are one-hot (or all zero) and that feeds only Dense, LSTM, GRU
or SimpleRNN call sites directly enters each of them only through x @ kernel, and a one-hot row
times the kernel is one row of the kernel, exactly. Those call sites are run from the gathered
rows (probes.engine.projected): the input matmul, ~80% of an LSTM's FLOPs at F = 4U, is skipped. The
forward pass takes such an input as (N, T) int32 codes (probes.engine.forward.compiled_forward); the
gradient probes attribute it at the projection (probes.engine.onehot_grads). Anything else (another
layer reading the input, a mask, a stateful or state-returning RNN, an input of another rank)
keeps the dense path, with a note saying why; so does every input under a Keras backend other
than TensorFlow (probes.engine.backends): the fast path is TensorFlow-only.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

EMPTY = -1  # the code of an all-zero row
SCAN_ROWS = 1 << 16  # rows of F values checked at a time: bounds the scan's memory
_SITES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # beside the model


def one_hot_codes(x) -> np.ndarray | None:
    """(..., F) float array -> (...) int32 codes (EMPTY for an all-zero row) when every value
    is 0 or 1 with at most one 1 per row along the last axis; else None."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim < 2 or x.size == 0:
        return None
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty(flat.shape[0], np.int32)
    for start in range(0, flat.shape[0], SCAN_ROWS):
        part = flat[start:start + SCAN_ROWS]
        ones = part == 1
        counts = ones.sum(axis=1)
        if counts.max() > 1 or np.count_nonzero(ones) + np.count_nonzero(part == 0) != part.size:
            return None
        out[start:start + SCAN_ROWS] = np.where(counts > 0, ones.argmax(axis=1), EMPTY)
    return out.reshape(x.shape[:-1])


def codes_of(x) -> np.ndarray | None:
    """(N, T) int32 codes of a one-hot input (EMPTY for all-zero rows): a coded lazy input's
    own codes (probes.model.lazy), or a float array's (`one_hot_codes`); else None."""
    from probes.model.lazy import coded_width, is_lazy

    width = coded_width(x)
    if width is not None:
        codes = np.asarray(x.codes)
        return np.where((codes < 0) | (codes >= width), EMPTY, codes).astype(np.int32)
    if is_lazy(x) or np.ndim(x) != 3:
        return None
    return one_hot_codes(x)


def coded_inputs(model, xs: list, bg: list) -> tuple[list, list]:
    """`xs` and `bg` with every float one-hot (N, T, F) array that feeds gathered call sites
    replaced by a lazy `probes.model.onehot.OneHot` of its codes (the same values): passes then
    carry codes and run the gathered forward. `bg is xs` stays true."""
    from probes.model.onehot import OneHot

    sites, _ = gather_sites(model)

    def convert(arrays):
        out = []
        for i, x in enumerate(arrays):
            codes = codes_of(x) if i in sites and isinstance(x, np.ndarray) else None
            out.append(x if codes is None else OneHot(codes, x.shape[-1]))
        return out

    new = convert(xs)
    return new, new if bg is xs else convert(bg)


def gather_sites(model) -> tuple[dict[int, tuple], dict[int, str]]:
    """Inputs whose every call site can run from gathered kernel rows.

    Returns:
        ({input index: ((layer, call index), ...)}, {input index: why not}) for the (N, T, F)
        float inputs that reach a head; other inputs are in neither.
    """
    from probes.engine import backends
    from probes.model.graph import consumers
    from probes.engine.projected import kernel, unsupported

    if model not in _SITES:  # its own cache: compiled_forward asks while holding forward's
        sites, why = {}, {}
        for i, tensor in enumerate(model.inputs):
            shape = tuple(tensor.shape)
            if len(shape) != 3 or shape[2] is None or "float" not in str(tensor.dtype):
                continue
            found = consumers(model, tensor)
            reasons = [_reason(layer, index, tensor, shape[2], unsupported, kernel)
                       for layer, index in found]
            reasons = [r for r in reasons if r]
            if found and not reasons:
                sites[i] = tuple(sorted(found, key=lambda s: (s[0].name, s[1])))
            elif found:
                why[i] = reasons[0]
        if backends.name() != "tensorflow":  # the gathered kernels and their gradients are tf
            why.update((i, f"the one-hot path is TensorFlow-only; the Keras backend is "
                           f"{backends.name()!r}") for i in sites)
            sites = {}
        _SITES[model] = (sites, why)
    return _SITES[model]


def _reason(layer, index, tensor, features, unsupported, kernel) -> str | None:
    """Why call site `index` of `layer` cannot take `tensor` as gathered rows, or None."""
    why = unsupported(layer)
    if why:
        return why
    node = layer._inbound_nodes[index]
    args = node.arguments
    if (len(args.keras_tensors) != 1 or not args.args or args.args[0] is not tensor
            or len(node.outputs) != 1
            or any(v is not None and not isinstance(v, bool) for v in args.kwargs.values())):
        return f"{type(layer).__name__} {layer.name!r} reads more than the input (a mask, a state)"
    if tuple(kernel(layer).shape)[0] != features:
        return f"{layer.name!r}'s kernel has {kernel(layer).shape[0]} rows, not {features}"
    return None


def gathered_layers(model, names, encoded) -> dict:
    """{input name: its layers' names} of the coded inputs (`encoded`: per input a width or
    None, as compiled_forward takes) that the forward pass runs from gathered kernel rows."""
    sites, _ = gather_sites(model)
    return {names[i]: _layer_names(sites[i]) for i, width in enumerate(encoded)
            if width and i in sites}


def _layer_names(call_sites) -> str:
    """"lstm, dense": the layers of ((layer, call index), ...), each once, in order."""
    return ", ".join(dict.fromkeys(layer.name for layer, _ in call_sites))


def gather_rows(weights, codes):
    """(..., G) rows of the (F, G) `weights` at int `codes` (...); a code outside [0, F), such
    as EMPTY, gives a row of zeros: what a one-hot row, or an all-zero one, times the weights
    gives exactly."""
    import tensorflow as tf

    w = tf.convert_to_tensor(weights)
    f = w.shape[0]
    table = tf.concat([w, tf.zeros([1, w.shape[1]], w.dtype)], axis=0)  # (F + 1, G)
    codes = tf.cast(codes, tf.int32)
    return tf.gather(table, tf.where((codes < 0) | (codes >= f), f, codes))


def gathered_call(layer, codes, *args, **kwargs):
    """A `probes.model.graphrun.run_graph` replacement: `layer` on the one-hot rows of `codes`
    (b, T), run from its gathered kernel rows."""
    from probes.engine.projected import kernel, run

    return run(layer, gather_rows(kernel(layer), codes))


@dataclasses.dataclass(frozen=True)
class Route:
    """The inputs that gradient probes attribute at their gathered projection.

    sites: {input index: ((layer, call index), ...)}; used: {input name: layer names};
    notes: one line per one-hot input (the path it took, and why when it is dense).
    """

    sites: dict
    used: dict
    notes: tuple


def route(model, names, method, xs, base, baseline, tokens, masks: bool,
          enabled: bool = True) -> Route:
    """Which inputs take the one-hot path for `method`.

    Args:
        xs: per input, the samples (arrays or lazy inputs); base: integrated gradients'
            baselines (None for the other methods); tokens: indices of token inputs.
        masks: the graph computes masks (those runs stay dense).
    """
    sites, why = gather_sites(model) if enabled else ({}, {})
    candidates = [i for i in range(len(xs)) if i not in tokens and codes_of(xs[i]) is not None]
    notes, chosen = [], {}
    for i in candidates:
        reason = why.get(i) or (None if i in sites else "one-hot path turned off")
        if method == "saliency":
            reason = "saliency keeps the dense gradient"
        elif reason is None and masks:
            reason = "the graph computes masks"
        elif reason is None and base is not None and not _linear_baseline(base[i], baseline):
            reason = "the baseline is neither one-hot nor one row shared by every sample"
        if reason:
            notes.append(f"{names[i]}: one-hot, dense path ({reason})")
            continue
        chosen[i] = sites[i]
        notes.append(f"{names[i]}: one-hot, attributed at its projection into "
                     f"{_layer_names(sites[i])} (kernel rows gathered by code; the input "
                     "matmul skipped)")
    used = {names[i]: _layer_names(s) for i, s in chosen.items()}
    return Route(chosen, used, tuple(notes))


def _linear_baseline(b, baseline) -> bool:
    """A baseline the path can project: zero, shuffle, mean, one-hot arrays or one shared
    row."""
    if isinstance(baseline, str):
        return True
    if isinstance(b, np.ndarray) and b.ndim and b.strides[0] == 0:
        return True  # one row broadcast to every sample
    return codes_of(b) is not None
