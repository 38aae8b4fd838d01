"""Weight coupling and task affinity: what one task's step does to the other heads.

coupling: one plain gradient step on task j's loss alone, on every weight upstream of head j;
measure how far every head's predictions move on held-out data and how each task's loss
changes, next to the first-order prediction -lr * <g_i, g_j>. A control step restricted to head
j's own weights (used by no other head) must move every other head by exactly 0.0.

TrainingMonitor: a Keras callback that, every k training steps, records the task gradients'
cosine on each shared layer and the lookahead task affinity of Fifty et al., 2021:
Z(i -> j) = 1 - L_j(theta_s - lr * g_i) / L_j(theta_s), a step on the shared weights with task
i's gradient only, evaluated on task j (positive: task i's step helps task j).
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from probes import data as pdata
from probes.forward import chunks, compiled_forward, run_all
from probes.taskgrads import (
    add_weighted,
    gradient_function,
    loss_function,
    loss_kinds,
    output_losses,
    own_variables,
    pair_statistics,
    variable_groups,
)


@contextlib.contextmanager
def restored(variables):
    """Restores every variable's value on exit, even after an error."""
    saved = [np.array(v.numpy(), copy=True) for v in variables]
    try:
        yield
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


@dataclasses.dataclass(frozen=True)
class Coupling:
    """Effects of one step on task j (rows) on every head i (columns).

    Attributes:
        heads: (H,).
        moved: (H, H) mean |change of head i's output| over samples after a step on task j's
            loss on all its weights; moved_control: the same for a step on head j's own weights.
        loss_change: (H, H) measured change of task i's loss; predicted: -lr * <g_i, g_j>.
        own: per head, how many of its variables are its own (the control step's).
    """

    heads: tuple[str, ...]
    moved: np.ndarray
    moved_control: np.ndarray
    loss_change: np.ndarray
    predicted: np.ndarray
    own: tuple[int, ...]
    params: dict

    def to_json(self) -> dict:
        return {"heads": list(self.heads), "moved": self.moved.tolist(),
                "moved_control": self.moved_control.tolist(),
                "loss_change": self.loss_change.tolist(), "predicted": self.predicted.tolist(),
                "own_variables": list(self.own), "params": self.params}


def coupling(model, inputs, labels, *, rng: np.random.Generator | None = None,
             learning_rate: float = 1e-2, batch_size: int = 256,
             seed: int | None = None, gradients=None) -> Coupling:
    """One gradient step per task, on all its weights and on its own weights only.

    Args:
        inputs: {input name: (N, ...)}; labels: {head name: (N,)}; the gradients and the
            measured changes use all N samples.
        learning_rate: size of the plain gradient step (theta - lr * g).
        rng: unused (the probe is deterministic); accepted for the probe signature.
        gradients: optional per head, per variable of `model.trainable_weights`, the gradient
            of the mean loss over these N samples (from `probes.taskgrads.task_gradients`);
            computed here when None.
    """
    del rng
    if not learning_rate > 0:
        raise ValueError(f"Expected a learning rate > 0; received {learning_rate}")
    heads = pdata.output_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    ys = pdata.canonical_labels(model, labels, xs[0].shape[0])
    variables = list(model.trainable_weights)
    kinds = loss_kinds(model)
    forward = compiled_forward(model)
    if gradients is None:
        gradients = _full_gradients(gradient_function(model, variables), xs, ys, batch_size)
    grads = gradients  # H x V, averaged over samples
    if len(grads) != len(heads) or any(len(g) != len(variables) for g in grads):
        raise ValueError(f"Expected gradients for {len(heads)} heads x {len(variables)} "
                         f"variables; received {len(grads)} x {[len(g) for g in grads]}")
    before_out = run_all(forward, xs, batch_size)  # H x (N, C)
    before_loss = output_losses(before_out, ys, kinds)
    h = len(heads)
    moved, control = np.zeros((h, h)), np.zeros((h, h))
    change, predicted = np.zeros((h, h)), np.zeros((h, h))
    own = []
    flat = [np.concatenate([g.ravel() for g in gh]) for gh in grads]
    for j in range(h):
        with restored(variables):
            for v, g in zip(variables, grads[j]):
                v.assign(np.asarray(v.numpy()) - learning_rate * g.astype(np.float32))
            after = run_all(forward, xs, batch_size)
            moved[j] = _moved(before_out, after)
            change[j] = output_losses(after, ys, kinds) - before_loss
        mine = {id(v) for v in own_variables(model, heads[j])}
        own.append(len(mine))
        with restored(variables):
            for v, g in zip(variables, grads[j]):
                if id(v) in mine:
                    v.assign(np.asarray(v.numpy()) - learning_rate * g.astype(np.float32))
            control[j] = _moved(before_out, run_all(forward, xs, batch_size))
        predicted[j] = [-learning_rate * flat[i] @ flat[j] for i in range(h)]
    return Coupling(heads=heads, moved=moved, moved_control=control, loss_change=change,
                    predicted=predicted, own=tuple(own),
                    params={"learning_rate": learning_rate, "samples": int(xs[0].shape[0]),
                            "seed": seed, "batch_size": batch_size})


def _full_gradients(fn, xs, ys, batch_size):
    """Per head, per variable: the gradient of the mean loss over all samples (float64)."""
    n = xs[0].shape[0]
    total = None
    for a, b in chunks(n, batch_size):
        _, g = fn([np.asarray(x[a:b], np.float32) for x in xs], [y[a:b] for y in ys])
        total = add_weighted(total, g, (b - a) / n)
    return total


def _moved(before, after) -> np.ndarray:
    return np.array([np.abs(a - b).mean() for a, b in zip(after, before)])


def training_monitor(model, probe_inputs, probe_labels, *, every: int = 8,
                     lookahead_lr: float = 1e-2):
    """A keras.callbacks.Callback recording gradient agreement and task affinity.

    Args:
        probe_inputs, probe_labels: a fixed batch (lists in model order) evaluated at every
            record.
        every: training steps between records (the first record is before step 1).
    Returns:
        The callback; after training, `callback.record()` is a JSON-ready dict with, per
        record, the step, per-group norms and cosines, losses and the affinity matrix.
    """
    import keras
    import tensorflow as tf

    variables, groups = variable_groups(model)
    heads = pdata.output_names(model)
    xs = [np.asarray(x, np.float32) for x in probe_inputs]
    ys = [np.asarray(y, np.float64).reshape(len(y), -1) for y in probe_labels]
    grads_fn = gradient_function(model, variables) if groups else None
    losses_fn = tf.function(loss_function(model), reduce_retracing=True)

    class Monitor(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.records = 0, []

        def on_train_batch_begin(self, batch, logs=None):
            if grads_fn is not None and self.step % every == 0:
                self.records.append(self._measure())
            self.step += 1

        def _measure(self):
            per, grads = grads_fn(xs, ys)
            grads = [[np.asarray(g, np.float64) for g in gh] for gh in grads]
            norms, cosine = pair_statistics(grads, groups)
            base = np.asarray(per, np.float64)
            affinity = np.zeros((len(heads), len(heads)))
            for i in range(len(heads)):
                with restored(variables):
                    for v, g in zip(variables, grads[i]):
                        v.assign(np.asarray(v.numpy()) - lookahead_lr * g.astype(np.float32))
                    after = np.asarray(losses_fn(xs, ys), np.float64)
                affinity[i] = 1 - after / np.maximum(base, 1e-12)
            return {"step": self.step, "losses": base.tolist(), "norms": norms.tolist(),
                    "cosine": cosine.tolist(), "affinity": affinity.tolist()}

        def record(self) -> dict:
            return {"heads": list(heads), "groups": list(groups), "every": every,
                    "lookahead_lr": lookahead_lr, "probe_samples": int(xs[0].shape[0]),
                    "records": self.records}

    return Monitor()
