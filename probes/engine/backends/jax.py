"""JAX: jax.jit over a pure function, jax.vjp (probes.engine.backends).

JAX differentiates function arguments only, and a compiled function keeps whatever it closes
over as constants. So a compiled function takes the values of the model's variables as its
first argument and reads them through a keras.StatelessScope (the mechanism of
`stateless_call`): a trace never keeps stale weights, and gradients with respect to variables
are gradients with respect to those values. Points on a path are arguments already; at an
embedding, probes.model.graphrun gives the Embedding call site its output, so that output is
one.
"""

from __future__ import annotations

NAME = "jax"


def compile(fn, model=None, specs=None):
    """fn under jax.jit (traced per shape; `specs` is TensorFlow's and unused), reading
    `model`'s variables from an argument."""
    import jax

    from probes.engine.backends import stateless_scope

    if model is None:
        return jax.jit(fn)
    variables = list(model.variables)

    @jax.jit
    def pure(values, *args):
        with stateless_scope(zip(variables, values)):
            return fn(*args)

    def compiled(*args):
        return pure([v.value for v in variables], *args)

    return compiled


def spec(shape: tuple, dtype: str):
    """None: jax.jit traces per shape (TensorFlow's input signatures, `compile`'s specs)."""
    return None


def row_gradients(totals_fn, points):
    """(totals, grads): grads[r][i] the gradient of totals_fn(points)[r] with respect to
    points[i] (one forward pass, then one backward per row; never None: JAX returns zeros
    where TensorFlow finds no gradient)."""
    import jax
    import jax.numpy as jnp

    totals, back = jax.vjp(lambda ps: jnp.stack(totals_fn(ps)), list(points))
    # one backward per row in turn (lax.map, not vmap): memory stays that of one backward pass
    (grads,) = jax.lax.map(back, jnp.eye(totals.shape[0], dtype=totals.dtype))
    return list(totals), [[g[r] for g in grads] for r in range(totals.shape[0])]


def variable_gradients(totals_fn, variables):
    """((R,) totals, per row a gradient per variable): the variables read as arguments
    through a keras.StatelessScope (zeros where a variable does not reach the row)."""
    import jax
    import jax.numpy as jnp

    from probes.engine.backends import stateless_scope

    def pure(values):
        with stateless_scope(zip(variables, values)):
            return totals_fn()

    totals, back = jax.vjp(pure, [v.value for v in variables])
    (grads,) = jax.lax.map(back, jnp.eye(totals.shape[0], dtype=totals.dtype))
    return totals, [[g[r] for g in grads] for r in range(totals.shape[0])]


def errors() -> tuple:
    """A model's failing op raises these (XLA's runtime errors)."""
    from jax.errors import JaxRuntimeError

    return (JaxRuntimeError,)
