"""One compiled forward pass, traced once for any number of rows.

Every probe that compares outputs runs the unaltered and the altered inputs through the same
compiled function. A head that cannot see the altered input then receives bit-identical
values on its rows and returns bit-identical outputs: its effect is exactly 0.0, not 1e-8.
That relies on a row's outputs not depending on the other rows of its pass (true of the
CPU kernels; the exact-zero tests check it). The N rows are split into ceil(N / batch_size)
chunks of near-equal width, so a pass never computes more than one padding row per chunk
(64 samples with --batch-size 256 run as one pass of 64 rows, not 256).
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import NamedTuple

import numpy as np

_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()  # re-entrant: a build may ask for another cached function


def cached(model, key, build):
    """`build()`, once per model, key and the output layers' current activations.

    Tracing a compiled function of a recurrent model (and its gradient) takes seconds, so the
    probes of one process share them. The activations are part of the key because a trace
    keeps the activation it saw. The functions live beside the model, weakly keyed on it
    (never on the model object): they go when the model goes.
    """
    acts = tuple(id(getattr(t._keras_history.operation, "activation", None))
                 for t in model.outputs)
    with _LOCK:
        store = _FUNCTIONS.setdefault(model, {})
        if (key, acts) not in store:
            store[(key, acts)] = build()
        return store[(key, acts)]


def compiled_forward(model, encoded: tuple = (), linear: frozenset = frozenset()):
    """A function mapping a list of input arrays (any number of rows) to the list of output
    tensors (one per head, `probes.model.graph.heads` order): one compiled function per model
    (probes.engine.backends; TensorFlow traces it once with the batch axis left open, JAX once
    per pass width).

    Args:
        linear: names of heads read before their sigmoid/softmax (logit space; see
            probes.model.graphrun).
        encoded: per input, the one-hot width F when that input is given as (N, T) integer
            codes to one-hot encode inside the graph (a code outside [0, F), such as -1, is an
            all-zero row: the same floats as a coded one-hot input's rows, probes.model.lazy), else
            None; () for none. A (N, T, F) float32 one-hot input is 4F times the bytes of its
            int32 codes: for the question's inputs, 73 MB against 0.3 MB per 256 rows, copied
            on every pass. A coded input whose every call site is a Dense, LSTM, GRU or
            SimpleRNN layer reading it directly is never encoded: those call sites run from
            their kernel rows gathered by code (probes.engine.onehot_path), the same outputs without
            the input matmul.
    """
    encoded = tuple(encoded) or (None,) * len(model.inputs)
    linear = frozenset(linear)
    return cached(model, ("forward", encoded, linear),
                  lambda: _compile_forward(model, encoded, linear))


def compiled_partial(model, varied: int, encoded: tuple = (), linear: frozenset = frozenset()):
    """(frontier, forward) for passes in which input `varied` changes and the others stay
    the samples' (a deletion curve, an ablation of one input): the rest of the graph is
    computed once per sample instead of once per altered row.

    `frontier(xs)` maps the samples (one array per input, as `compiled_forward` takes them) to
    the outputs of the call sites that do not read input `varied` but feed ones that do, or a
    head (probes.model.graphrun.split_at); `forward(xs, front)` maps rows (every input, the other
    inputs as the samples' rows) and those outputs at the same rows to the heads' outputs,
    computing only the call sites that read input `varied`. A model whose every call site
    reads it has an empty frontier, and `forward` is the whole pass.
    """
    encoded = tuple(encoded) or (None,) * len(model.inputs)
    linear = frozenset(linear)
    return cached(model, ("partial", varied, encoded, linear),
                  lambda: _compile_forward(model, encoded, linear, varied))


def _compile_forward(model, encoded, linear, varied=None):
    from keras import ops

    from probes.engine import backends, devices
    from probes.model.graphrun import call_key, call_sites, logit_heads, run_graph, split_at
    from probes.engine.onehot_path import gather_sites, gathered_call

    backend = backends.get()
    spec = backend.spec
    sites, _ = gather_sites(model)
    gathered = [bool(width) and i in sites for i, width in enumerate(encoded)]
    replaced = {(id(layer), index): gathered_call
                for i in range(len(encoded)) if gathered[i] for layer, index in sites[i]}
    squashed = logit_heads(model)
    linear_ids = frozenset(id(squashed[h]) for h in linear if h in squashed)
    dtypes, specs = [], []
    for t, width in zip(model.inputs, encoded):
        shape = (None,) + tuple(t.shape[1:])
        dtypes.append("int32" if width else str(t.dtype))
        specs.append(spec(shape[:-1] if width else shape, dtypes[-1]))

    def graph_inputs(xs):
        xs = [x if g else ops.one_hot(x, width, dtype="float32") if width else x
              for x, width, g in zip(xs, encoded, gathered)]  # gathered: codes stay codes
        return [ops.cast(x, t.dtype) if x.dtype != t.dtype and not g else x
                for x, t, g in zip(xs, model.inputs, gathered)]

    def arrays(xs):
        return [np.asarray(x, d) for x, d in zip(xs, dtypes)]

    if varied is None:
        def whole(xs):
            return run_graph(model, graph_inputs(xs), linear=linear_ids, replaced=replaced)

        compiled = backend.compile(whole, model, specs=[specs])

        def forward(xs):  # split by rows across the devices of probes.engine.devices.use, if any
            return devices.run(compiled, (arrays(xs),), split=(True,), axes=0)

        return forward

    downstream, frontier = split_at(model, varied)
    tensors = [t for _, node in frontier for t in node.outputs]
    counts = [len(node.outputs) for _, node in frontier]
    front_specs = [spec((None,) + tuple(t.shape[1:]), str(t.dtype)) for t in tensors]
    others = frozenset(call_key(node) for node in call_sites(model)) - downstream

    def frontier_outputs(xs):
        return run_graph(model, graph_inputs(xs), linear=linear_ids, replaced=replaced,
                         only=others, returns=tensors)

    def partial_outputs(xs, front):
        given, k = {}, 0
        for (key, _), n in zip(frontier, counts):
            given[key], k = list(front[k:k + n]), k + n
        return run_graph(model, graph_inputs(xs), linear=linear_ids, replaced=replaced,
                         given=given, only=downstream)

    compiled_frontier = backend.compile(frontier_outputs, model, specs=[specs])
    compiled_partial = backend.compile(partial_outputs, model, specs=[specs, front_specs])

    def front_of(xs):
        if not tensors:
            return []
        return [np.asarray(v) for v in
                devices.run(compiled_frontier, (arrays(xs),), split=(True,), axes=0)]

    def forward(xs, front):
        return devices.run(compiled_partial, (arrays(xs), list(front)), split=(True, True),
                           axes=0)

    return front_of, forward


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """Pads axis 0 to `rows` by repeating the last row (padding rows are discarded)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], missing, axis=0)], axis=0)


def run_chunk(forward, xs: list[np.ndarray], rows: int) -> list[np.ndarray]:
    """Outputs for one chunk of at most `rows` rows (padded to `rows`), as float64 (b, C)
    per head.

    Raises:
        ValueError: the model failed on these inputs (e.g. a token id outside an Embedding).
    """
    from probes.engine import backends

    b = xs[0].shape[0]
    try:
        outs = forward([pad_rows(x, rows) for x in xs])
    except backends.get().errors() as err:
        raise ValueError(f"Expected inputs the model can run on; received an error from the "
                         f"model: {op_message(err)}") from None
    return [np.asarray(o, dtype=np.float64).reshape(rows, -1)[:b] for o in outs]


def over_passes(call, xs, batch_size: int, ids=None, total: int | None = None
                ) -> list[np.ndarray]:
    """`call(rows, pass)` on every pass of `layout` over all N rows of `xs` (with `ids`, the
    rows' samples among `total`), each pass's outputs cut back to its own rows and
    concatenated: one (N, ...) array per output."""
    n = xs[0].shape[0]
    if ids is None:
        ids, total = np.arange(n), n
    pieces = []
    for p in layout(ids, total, batch_size):
        outs = call([place(np.asarray(x[p.start:p.stop]), p) for x in xs], p)
        pieces.append([o[p.offset:p.offset + p.stop - p.start] for o in outs])
    return [np.concatenate(parts) for parts in zip(*pieces)]


def run_all(forward, xs, batch_size: int, ids=None, total: int | None = None
            ) -> list[np.ndarray]:
    """Per head (N, C) float64 outputs over all N rows, one pass per chunk (see `chunks`);
    with `ids` (the rows' samples among `total`), in the passes of `layout`."""
    return over_passes(lambda rows, p: run_chunk(forward, rows, p.width), xs, batch_size, ids,
                       total)


def frontier_rows(front_of, xs, batch_size: int, ids=None, total: int | None = None
                  ) -> list[np.ndarray]:
    """The frontier of a `compiled_partial` at all N rows of `xs`: one (N, ...) array per
    frontier tensor (none for an empty frontier), in the passes of `layout` (so a shard's
    equal the full run's rows)."""
    return over_passes(lambda rows, p: front_of(rows), xs, batch_size, ids, total)


def op_message(err) -> str:
    """The line of a TensorFlow runtime error that says what went wrong, without the
    graph-building stack and node names around it."""
    lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines()]
    keep = [line for line in lines if line and not line.startswith(
        ("File ", "[[", "Detected at node", "Graph execution error"))]
    text = keep[-1] if keep else type(err).__name__
    return re.split(r"\s*\[\[|\s*\[Op:", text)[0].strip()


def chunk_width(n: int, batch_size: int) -> int:
    """Rows per chunk when n rows are split into ceil(n / batch_size) near-equal chunks."""
    if n <= 0:
        return 1
    return -(-n // -(-n // batch_size))


def chunks(n: int, batch_size: int):
    """(start, stop) of the ceil(n / batch_size) consecutive chunks of at most
    `chunk_width(n, batch_size)` rows that cover n rows."""
    width = chunk_width(n, batch_size)
    for start in range(0, n, width):
        yield start, min(n, start + width)


class Pass(NamedTuple):
    """One pass of a layout: local rows [start, stop) sit at rows [offset, offset + stop -
    start) of a pass of `width` rows (the rest is padding, discarded)."""

    start: int
    stop: int
    offset: int
    width: int


def layout(ids, total: int, batch_size: int) -> list[Pass]:
    """The passes that compute samples `ids` exactly as a run over all `total` samples does.

    A run over samples 0..total-1 computes them in `chunks(total, batch_size)`, each padded to
    `chunk_width(total, batch_size)` rows. A row's numbers depend on the pass's shape (a pass
    of 8 rows rounds a gradient differently from one of 256) and may depend on its position,
    so a subset (a shard) puts each of its samples in a pass of the same width at the same
    position as the full run does: its rows then equal the full run's bit for bit. Runs of
    consecutive ids within one chunk share a pass. With ids 0..n-1 and total n this is
    `chunks(n, batch_size)` with every offset 0.

    Args:
        ids: (n,) the samples' rows among the `total`, in the order the caller holds them.
    Returns:
        The passes, covering local rows 0..n-1 in order.
    """
    ids = np.asarray(ids, np.int64)
    width = chunk_width(total, batch_size)
    if len(ids) == 0:
        return []
    block = ids // width  # the full run's chunk of each sample
    breaks = np.flatnonzero((np.diff(ids) != 1) | (np.diff(block) != 0)) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(ids)]])
    return [Pass(int(a), int(b), int(ids[a] - block[a] * width), width)
            for a, b in zip(starts, stops)]


def place(x: np.ndarray, p: Pass) -> np.ndarray:
    """The pass's rows: `x` (the stop - start rows of pass `p`) at its offset, padded before
    with copies of its first row and after with copies of its last (padding is discarded)."""
    after = p.width - p.offset - x.shape[0]
    if p.offset == 0:
        return pad_rows(x, p.width)
    parts = [np.repeat(x[:1], p.offset, axis=0), x]
    if after > 0:
        parts.append(np.repeat(x[-1:], after, axis=0))
    return np.concatenate(parts, axis=0)
