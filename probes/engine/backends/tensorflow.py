"""TensorFlow: tf.function and tf.GradientTape (probes.engine.backends)."""

from __future__ import annotations

NAME = "tensorflow"


def compile(fn, model=None, specs=None):
    """fn as a tf.function: with `specs` (an input signature) traced once with those shapes,
    else traced per shape (`reduce_retracing`: a second shape traces once more with open
    shapes). The model's variables are read live; `model` is not needed.

    Traced per shape, not with an open batch axis: the shape-specific graph of the recurrent
    gradient ran IG 12% slower when its batch axis was left open (measured). autograph=False:
    no tensor-dependent Python control flow, and converting run_graph took seconds of every
    first call (measured).
    """
    import tensorflow as tf

    if specs is not None:
        return tf.function(fn, input_signature=specs, autograph=False)
    return tf.function(fn, reduce_retracing=True, autograph=False)


def spec(shape: tuple, dtype: str):
    """An argument's spec in an input signature (`compile`'s specs): tf.TensorSpec."""
    import tensorflow as tf

    return tf.TensorSpec(shape, dtype)


def row_gradients(totals_fn, points):
    """(totals, grads): grads[r][i] the gradient of totals_fn(points)[r] with respect to
    points[i], None where it does not exist (one persistent tape, one backward per row)."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(points)
        totals = totals_fn(points)
    grads = [tape.gradient(total, points) for total in totals]
    del tape
    return totals, grads


def variable_gradients(totals_fn, variables):
    """((R,) totals, per row a gradient per variable; zeros where a variable does not reach
    the row)."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        totals = totals_fn()
        parts = tf.unstack(totals)
    # an Embedding's gradient comes as IndexedSlices: dense, as the other backends give it
    grads = [[tf.convert_to_tensor(g) for g in tape.gradient(
        p, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)] for p in parts]
    del tape
    return totals, grads


def errors() -> tuple:
    """A model's failing op (e.g. a token id outside an Embedding) raises these."""
    import tensorflow as tf

    return (tf.errors.OpError,)
