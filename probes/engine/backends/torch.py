"""PyTorch: eager calls and torch.autograd (probes.engine.backends).

Nothing is compiled (torch.compile's first call costs more than the probes' passes save);
outputs leave detached, so numpy can read them.
"""

from __future__ import annotations

NAME = "torch"


def compile(fn, model=None, specs=None):
    """fn called eagerly on tensors (numpy arguments converted), its outputs detached from the
    autograd graph."""
    import keras
    import numpy as np

    def run(*args):
        args = keras.tree.map_structure(
            lambda x: keras.ops.convert_to_tensor(x) if isinstance(x, np.ndarray) else x, args)
        return keras.tree.map_structure(
            lambda t: t.detach() if hasattr(t, "detach") else t, fn(*args))

    return run


def spec(shape: tuple, dtype: str):
    """None: nothing is traced (TensorFlow's input signatures, `compile`'s specs)."""
    return None


def row_gradients(totals_fn, points):
    """(totals, grads): grads[r][i] the gradient of totals_fn(points)[r] with respect to
    points[i], None where it does not exist (one forward pass, one backward per row)."""
    import torch

    from keras.ops import convert_to_tensor

    points = [convert_to_tensor(p).detach().requires_grad_(True) for p in points]
    totals = totals_fn(points)
    grads = []
    for total in totals:
        grads.append(list(torch.autograd.grad(total, points, retain_graph=True,
                                              allow_unused=True))
                     if total.requires_grad else [None] * len(points))
    return totals, grads


def variable_gradients(totals_fn, variables):
    """((R,) totals, per row a gradient per variable; zeros where a variable does not reach
    the row)."""
    import torch

    values = [v.value for v in variables]
    totals = totals_fn()
    grads = []
    for total in totals:
        got = (torch.autograd.grad(total, values, retain_graph=True, allow_unused=True)
               if total.requires_grad else [None] * len(values))
        grads.append([torch.zeros_like(x) if g is None else g for g, x in zip(got, values)])
    return totals, grads


def errors() -> tuple:
    """A model's failing op raises these (an index out of range: IndexError, RuntimeError)."""
    return (IndexError, RuntimeError)
