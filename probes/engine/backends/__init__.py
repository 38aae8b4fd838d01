"""The Keras backend's compilation and differentiation: one module per backend, same names.

Everything else in the probes is written in `keras.ops` and runs under any backend; what
differs is how a function is compiled and how gradients are taken, and that lives in
`tensorflow` (tf.function, tf.GradientTape), `jax` (jax.jit over a pure function of the
model's variables' values, jax.vjp) and `torch` (eager, torch.autograd). `get()` returns the
module of `keras.config.backend()`, chosen once (Keras fixes its backend when it is imported).
Each module has:
    NAME: the backend's name.
    compile(fn, model=None, specs=None): fn compiled; `specs` (TensorFlow's input signature,
        open batch axis) for functions called with many shapes; `model`: the model whose
        variables fn reads (JAX passes their values in, so a trace never keeps stale ones).
    spec(shape, dtype): one argument's entry in `specs` (None but under TensorFlow).
    row_gradients(totals_fn, points): (totals, grads) for a totals_fn(points) -> R scalars:
        per row the gradient of its total with respect to every point, None where the graph
        has no gradient (TensorFlow and PyTorch report it; JAX returns zeros).
    variable_gradients(totals_fn, variables): (the (R,) totals, per row a gradient per
        variable, zeros where a variable does not reach the row).
    errors(): the exception types a model's failing op raises when it runs.
The fast one-hot and recurrent paths (probes.engine.onehot_path) are TensorFlow-only.
"""

from __future__ import annotations

import functools
import importlib

BACKENDS = ("tensorflow", "jax", "torch")


@functools.cache
def get():
    """The module of the current Keras backend (see the package docstring)."""
    import keras

    name = keras.config.backend()
    if name not in BACKENDS:
        raise ValueError(f"Expected a Keras backend in {list(BACKENDS)}; received {name!r}")
    return importlib.import_module(f"probes.engine.backends.{name}")


def name() -> str:
    """The current Keras backend's name."""
    return get().NAME


def stateless_scope(pairs):
    """A keras.StatelessScope reading the variables of `pairs` ((variable, value) pairs) as
    those values, and every other variable as the enclosing scope reads it (a JAX-compiled
    function reads all of the model's variables from its arguments; probes.engine.backends.jax).
    """
    import keras
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    outer = get_stateless_scope()
    scope = keras.StatelessScope(state_mapping=list(pairs))
    if outer is not None:
        scope.state_mapping = {**outer.state_mapping, **scope.state_mapping}
    return scope
