"""What keeps a gradient probe from turning "I could not measure" into "this head ignores it".

Two failures look like a zero attribution and are not one:
  - no gradient at all: the graph links input and head, but TensorFlow has no gradient along
    the link (a cast to integers, argmax, rounding, a lookup). That is an error naming the
    layer where the gradient dies.
  - a gradient that vanishes while the output moves: every unit saturated (inputs scaled by
    1e38 gave exactly zero attributions and a completeness gap of 100%). Such cells are
    reported as unreliable, with the reason; `zero` needs the head's output to stay put too.
"""

from __future__ import annotations

import numpy as np

from probes.engine.forward import chunk_width, chunks, compiled_forward, run_chunk
from probes.model.graph import CallSite, heads, readable, structure

# Layers and ops with no useful gradient from their inputs (besides integer/boolean outputs).
NO_GRADIENT = ("Embedding", "Argmax", "Argmin", "Round", "Floor", "Ceil", "Sign", "Cast",
               "StringLookup", "IntegerLookup", "Hashing", "Discretization", "CategoryEncoding",
               "TextVectorization", "NotEqual", "Equal", "Greater", "Less")


def check_connected(model, disconnected, reach, row_names, names, row_heads) -> None:
    """Raises for the first (score row, input) whose gradient does not exist although the
    graph links them (`reach` (R, I)); `disconnected` holds (row, input) pairs. A subclassed
    model has no graph to say where: its missing gradients are zeros, and `unreliable_cells`
    flags those whose head still moves when the input is zeroed."""
    if not readable(model):
        return
    for r, i in sorted(disconnected):
        if not reach[r, i]:
            continue  # no path: a structural zero, not a missing gradient
        layer = where_gradient_dies(model, row_heads[r], i)
        raise ValueError(f"Expected a gradient of head {row_names[r]!r} with respect to input "
                         f"{names[i]!r}, which the graph links to it; received none: it dies "
                         f"at {layer}. Gradient attribution cannot measure this cell: use "
                         "probe ablate")


def where_gradient_dies(model, head: int, input_index: int) -> str:
    """The call site closest to the input, on a path from input to head, that passes no
    gradient: one producing integers or booleans, or a known non-differentiable layer."""
    upstream = structure(model).upstream[heads(model)[head][0]]
    reached = {id(model.inputs[input_index])}
    on_path = []
    for depth in sorted(model._nodes_by_depth, reverse=True):  # inputs first
        for node in model._nodes_by_depth[depth]:
            if node.is_input or not any(id(t) in reached for t in node.input_tensors):
                continue
            reached.update(id(t) for t in node.outputs)
            op = node.operation
            if CallSite(op.name, op._inbound_nodes.index(node)) in upstream:
                on_path.append(node)
    for node in on_path:
        op = node.operation
        kind = type(op).__name__
        dtypes = {str(t.dtype) for t in node.outputs}
        if kind in NO_GRADIENT or any("int" in d or "bool" in d for d in dtypes):
            return f"layer {op.name!r} ({kind}, output {', '.join(sorted(dtypes))})"
    if not on_path:
        return "a layer between them"
    first = on_path[0].operation
    return f"or after layer {first.name!r} ({type(first).__name__})"


def unreliable_cells(model, inputs, abs_sum, reach, row_heads, row_names, names,
                     batch_size: int) -> list[dict]:
    """Cells whose attributions are exactly 0 on every sample although the head's output moves
    when that input is zeroed (token id 0 for token inputs, as `probe ablate --mode zero`).

    Args:
        inputs: per input, the (N, ...) arrays as given (token ids, lazy one-hot...).
        abs_sum: (R, I, N) attributions' |sum| per score row, input and sample.
        reach: (R, I) bool, the graph links input and the row's head.
    Returns:
        [{"head", "input", "reason"}] per unreliable cell, row-major.
    """
    silent = [(r, i) for r, i in zip(*np.nonzero(reach)) if not np.any(abs_sum[r, i])]
    if not silent:
        return []
    moved = _moves_when_zeroed(model, inputs, sorted({i for _, i in silent}), batch_size)
    return [{"head": row_names[r], "input": names[i],
             "reason": "every attribution is exactly 0 but the head's output moves when "
                       "the input is zeroed (saturated or flat units: the gradient does not "
                       "see the dependency)"}
            for r, i in silent if moved[i][row_heads[r]]]


def _moves_when_zeroed(model, inputs, which, batch_size) -> dict[int, np.ndarray]:
    """Input index -> (H,) bool: the head's output changes on some sample when that input is
    set to 0. Both passes have the same shape, so a head that does not move gives
    bit-identical outputs."""
    forward = compiled_forward(model)
    n = inputs[0].shape[0]
    width = chunk_width(n, batch_size)
    moved = {i: np.zeros(len(model.outputs), bool) for i in which}
    for start, stop in chunks(n, batch_size):
        chunk = [np.asarray(x[start:stop]) for x in inputs]
        base = run_chunk(forward, chunk, width)
        for i in which:
            zeroed = [np.zeros_like(x) if j == i else x for j, x in enumerate(chunk)]
            outs = run_chunk(forward, zeroed, width)
            moved[i] |= [bool(np.any(o != b)) for o, b in zip(outs, base)]
    return moved
