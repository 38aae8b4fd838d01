"""One compiled forward pass on fixed-size chunks.

Every probe that compares outputs runs the baseline and the altered inputs through the same
compiled function, on chunks of the same shape, with each sample at the same row of its chunk.
Then a head that cannot see the altered input receives bit-identical tensors and returns
bit-identical outputs: its effect is exactly 0.0, not 1e-8.
"""

from __future__ import annotations

import re

import numpy as np


def compiled_forward(model):
    """A tf.function mapping a list of input arrays to the list of output tensors."""
    import tensorflow as tf

    single = len(model.inputs) == 1

    @tf.function(reduce_retracing=True)
    def forward(xs):
        out = model(xs[0] if single else xs, training=False)
        return out if isinstance(out, (list, tuple)) else [out]

    return forward


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """Pads axis 0 to `rows` by repeating the last row (padding rows are discarded)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], missing, axis=0)], axis=0)


def run_chunk(forward, xs: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Outputs for one chunk of at most `batch_size` rows, as float64 (b, C) per head.

    Raises:
        ValueError: the model failed on these inputs (e.g. a token id outside an Embedding).
    """
    import tensorflow as tf

    b = xs[0].shape[0]
    try:
        outs = forward([pad_rows(x, batch_size) for x in xs])
    except tf.errors.OpError as err:
        raise ValueError(f"Expected inputs the model can run on; received an error from the "
                         f"model: {op_message(err)}") from None
    return [np.asarray(o, dtype=np.float64).reshape(batch_size, -1)[:b] for o in outs]


def op_message(err) -> str:
    """The line of a TensorFlow runtime error that says what went wrong, without the
    graph-building stack and node names around it."""
    lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines()]
    keep = [line for line in lines if line and not line.startswith(
        ("File ", "[[", "Detected at node", "Graph execution error"))]
    text = keep[-1] if keep else type(err).__name__
    return re.split(r"\s*\[\[|\s*\[Op:", text)[0].strip()


def chunks(n: int, batch_size: int):
    """(start, stop) of consecutive chunks covering n rows."""
    for start in range(0, n, batch_size):
        yield start, min(n, start + batch_size)
