"""Each head's loss: one rule, decided from the model, in numpy (float64) and in keras.ops.

The rule, per head (`probes.model.graph.heads` order), from the layer that produces its output
(followed into a nested functional model):
  "bce"                       the layer's activation is a sigmoid: binary cross-entropy,
                              averaged over the head's output units;
  "categorical_crossentropy"  the layer's activation is a softmax (or it is a Softmax layer
                              on the last axis): categorical cross-entropy over the last axis,
                              averaged over the other axes; labels one-hot (or soft) over the
                              last axis, or one integer class per position;
  "mse"                       anything else: squared error, averaged over the output units.
Labels never change the kind: a head gets the same loss from every probe (ablation's loss
effects, task gradients, coupling, the training monitor), whatever values its labels hold.

Both implementations are Keras' formulas (`keras.losses.binary_crossentropy`,
`categorical_crossentropy`, `mean_squared_error`), probabilities clipped to
[1e-7, 1 - 1e-7] with Keras' epsilon, the categorical ones normalised to sum to 1 first. Keras
clips in the outputs' float32, so numpy clips at the same float32 bounds: 1 - 1e-7 is
0.99999988 in float32, and a head at 1.0 with label 0 costs -log(1.19e-7), not -log(1e-7).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

KINDS = ("bce", "categorical_crossentropy", "mse")
EPSILON = 1e-7  # keras.config.epsilon()
LOW, HIGH = float(np.float32(EPSILON)), float(np.float32(1 - EPSILON))  # Keras' float32 clip


@dataclasses.dataclass(frozen=True)
class HeadLoss:
    """One head's loss.

    Attributes:
        head: the head's name; kind: one of KINDS.
        classes: size of the softmax axis (the output's last axis) for a categorical head,
            else 1; a sample's loss averages over its output units / classes positions.
    """

    head: str
    kind: str
    classes: int = 1


def head_losses(model) -> tuple[HeadLoss, ...]:
    """Per head, model order: its loss under the rule of this module."""
    from probes.model.graph import heads

    out = []
    for name, tensor in heads(model):
        shape = tuple(tensor.shape)[1:]
        kind = _kind(tensor)
        classes = int(shape[-1] or 1) if kind == "categorical_crossentropy" and shape else 1
        out.append(HeadLoss(name, kind, classes))
    return tuple(out)


def loss_kinds(model) -> tuple[str, ...]:
    """Per head, model order: "bce", "categorical_crossentropy" or "mse" (see the module)."""
    return tuple(loss.kind for loss in head_losses(model))


def _kind(tensor) -> str:
    history = tensor._keras_history
    op = history.operation
    # A nested functional model's output: the layer inside that computes it.
    while hasattr(op, "outputs") and hasattr(op, "_nodes_by_depth"):
        inner = op.outputs[history.tensor_index]
        history, op = inner._keras_history, inner._keras_history.operation
    name = getattr(getattr(op, "activation", None), "__name__", None)
    if name == "sigmoid":
        return "bce"
    if name == "softmax" or (type(op).__name__ == "Softmax"
                             and getattr(op, "axis", -1) in (-1, len(tensor.shape) - 1)):
        return "categorical_crossentropy"
    return "mse"


def sample_losses(outs, ys, losses) -> np.ndarray:
    """(H, N) float64 per-sample loss of every head.

    Args:
        outs: per head (N, ...) outputs; ys: per head (N, ...) labels, as many values per
            sample as outputs, or for a categorical head one integer class per position;
        losses: per head a HeadLoss (`head_losses(model)`).
    """
    return np.stack([_sample_loss(o, y, loss) for o, y, loss in zip(outs, ys, losses)])


def mean_losses(outs, ys, losses) -> np.ndarray:
    """(H,) float64 mean loss over the samples: `sample_losses` averaged."""
    return sample_losses(outs, ys, losses).mean(axis=1)


def _sample_loss(o, y, loss: HeadLoss) -> np.ndarray:
    n = np.shape(o)[0]
    o = np.asarray(o, np.float64).reshape(n, -1, loss.classes)  # (N, P, C)
    y = np.asarray(y, np.float64).reshape(n, -1)
    if loss.kind == "categorical_crossentropy":
        if loss.classes > 1 and y.shape[1] == o.shape[1]:  # one integer class per position
            y = np.eye(loss.classes)[y.astype(np.int64)]
        y = y.reshape(o.shape)
        p = np.clip(o / o.sum(axis=-1, keepdims=True), LOW, HIGH)
        return -(y * np.log(p)).sum(axis=-1).mean(axis=1)
    y = y.reshape(o.shape)
    if loss.kind == "bce":
        p = np.clip(o, LOW, HIGH)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=(1, 2))
    return ((o - y) ** 2).mean(axis=(1, 2))


def tensor_mean_losses(outs, ys, losses):
    """(H,) float32 mean loss over the samples, the formulas of `sample_losses` in keras.ops
    (differentiable under any backend; for task gradients and the training monitor).

    Args:
        outs: per head (N, ...) output tensors; ys: per head (N, ...) labels; losses: per head
            a HeadLoss.
    """
    from keras import ops

    return ops.stack([_tensor_mean_loss(o, y, loss) for o, y, loss in zip(outs, ys, losses)])


def _tensor_mean_loss(o, y, loss: HeadLoss):
    from keras import ops

    o = ops.cast(o, "float32")
    y = ops.cast(y, "float32")
    n = ops.shape(o)[0]
    # One integer class per position: a label width of output width / classes (static).
    integer = (loss.classes > 1 and None not in (*o.shape[1:], *y.shape[1:])
               and math.prod(y.shape[1:]) * loss.classes == math.prod(o.shape[1:]))
    o = ops.reshape(o, (n, -1, loss.classes))  # (N, P, C)
    y = ops.reshape(y, (n, -1))
    if loss.kind == "categorical_crossentropy":
        if integer:
            y = ops.one_hot(ops.cast(y, "int32"), loss.classes, dtype="float32")
        y = ops.reshape(y, ops.shape(o))
        p = ops.clip(o / ops.sum(o, axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return ops.mean(-ops.sum(y * ops.log(p), axis=-1))
    y = ops.reshape(y, ops.shape(o))
    if loss.kind == "bce":
        p = ops.clip(o, EPSILON, 1 - EPSILON)
        return ops.mean(-(y * ops.log(p) + (1 - y) * ops.log(1 - p)))
    return ops.mean(ops.square(o - y))
