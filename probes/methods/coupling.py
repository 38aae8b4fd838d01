"""Weight coupling and task affinity: what one task's step does to the other heads.

coupling: one plain gradient step on task j's loss alone, on every weight upstream of head j;
measure how far every head's predictions move on held-out data and how each task's loss
changes, next to the first-order prediction -lr * <g_i, g_j>. A control step restricted to head
j's own weights (used by no other head) must move every other head by exactly 0.0.

TrainingMonitor: a Keras callback that, every k training steps, records the task gradients'
cosine on each shared layer and the lookahead task affinity of Fifty et al., 2021:
Z(i -> j) = 1 - L_j(theta_s - lr * g_i) / L_j(theta_s), a step on the shared weights with task
i's gradient only, evaluated on task j (positive: task i's step helps task j).

Neither writes the model's variables, even for a moment: the stepped weights are tensors that
a Keras StatelessScope (the mechanism of `stateless_call`) reads in place of the variables, so
two probes on one model in two threads never see each other's steps. Losses follow the one
rule of `probes.model.losses`.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from probes.engine.forward import cached, chunks, run_all
from probes.model import data as pdata
from probes.model.losses import head_losses, mean_losses, tensor_mean_losses
from probes.results import resultio
from probes.results.protocol import Result
from probes.methods.taskgrads import (
    add_weighted,
    gradient_function,
    own_variables,
    pair_statistics,
    variable_groups,
)


def stateless_outputs(model, values, xs) -> list:
    """The model's outputs (`probes.model.graph.heads` order) in inference mode with its trainable
    variables read as `values` (tensors, one per `model.trainable_variables`) and its other
    variables as they are. Nothing is written to the model: the graph runs call site by call
    site (`probes.model.graphrun.run_graph`) inside a Keras StatelessScope, the mechanism of
    `Layer.stateless_call`, which maps each variable read to its value and keeps any write
    in the scope (thread-local, so another thread's probe never sees these values)."""
    from keras import ops

    from probes.engine.backends import stateless_scope
    from probes.model.graphrun import run_graph

    xs = [ops.cast(x, t.dtype) if x.dtype != t.dtype else x for x, t in zip(xs, model.inputs)]
    with stateless_scope(zip(model.trainable_variables, values)):
        return run_graph(model, xs)


def stateless_forward(model):
    """forward(values, xs) -> per head output tensors, `stateless_outputs` compiled once per
    model (probes.engine.backends; TensorFlow traces it once for any number of rows), so
    outputs before and after a step come from the same compiled function with the same
    shapes: bit-identical where a head does not read the stepped values."""
    return cached(model, ("stateless_forward",), lambda: _compile_stateless(model))


def _compile_stateless(model):
    from probes.engine import backends

    backend = backends.get()
    dtypes = [str(t.dtype) for t in model.inputs]
    variables = [backend.spec(v.shape, v.dtype) for v in model.trainable_variables]
    inputs = [backend.spec((None,) + tuple(t.shape[1:]), d)
              for t, d in zip(model.inputs, dtypes)]

    def outputs(values, xs):
        return stateless_outputs(model, values, xs)

    compiled = backend.compile(outputs, model, specs=[variables, inputs])

    def forward(values, xs):
        return compiled(list(values), [np.asarray(x, d) for x, d in zip(xs, dtypes)])

    return forward


def current_values(model) -> list[np.ndarray]:
    """A copy of the values of `model.trainable_variables` (the model is only read)."""
    return [np.array(v.numpy(), copy=True) for v in model.trainable_variables]


def stepped(model, values, variables, grads, learning_rate: float,
            only=None) -> list[np.ndarray]:
    """`values` (per `model.trainable_variables`) after theta - lr * g on `variables` (those
    whose id is in `only`, when given); float32 like the variables."""
    out = list(values)
    position = {id(v): k for k, v in enumerate(model.trainable_variables)}
    for v, g in zip(variables, grads):
        if only is None or id(v) in only:
            k = position[id(v)]
            out[k] = out[k] - learning_rate * np.asarray(g).astype(np.float32)
    return out


@resultio.register("coupling")
@dataclasses.dataclass(frozen=True)
class Coupling(Result):
    """Effects of one step on task j (rows) on every head i (columns).

    Attributes:
        heads: (H,).
        moved: (H, H) mean |change of head i's output| over samples after a step on task j's
            loss on all its weights; moved_control: the same for a step on head j's own weights.
        loss_change: (H, H) measured change of task i's loss; predicted: -lr * <g_i, g_j>.
        loss: (H,) each task's mean loss before any step (`probes.model.losses`).
        own: per head, how many of its variables are its own (the control step's).
    """

    heads: tuple[str, ...]
    moved: np.ndarray
    moved_control: np.ndarray
    loss_change: np.ndarray
    predicted: np.ndarray
    loss: np.ndarray
    own: tuple[int, ...]
    params: dict

    def summary(self) -> dict:
        """Whether a step on one task moves another head at all (`linked`), the largest such
        move, and whether every own-weights control left the other heads exactly as they
        were (`control_exact`: it must)."""
        off = ~np.eye(len(self.heads), dtype=bool)
        return {"linked": bool(np.any(self.moved[off] > 0)),
                "largest_cross_move": float(self.moved[off].max()) if off.any() else 0.0,
                "control_exact": bool(np.all(self.moved_control[off] == 0.0))}

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): a row per task stepped and head moved."""
        rows = [[head, other, f"{self.moved[j, i]:.3g}", f"{self.moved_control[j, i]:.3g}",
                 f"{self.loss_change[j, i]:.3g}", f"{self.predicted[j, i]:.3g}"]
                for j, head in enumerate(self.heads) for i, other in enumerate(self.heads)]
        return (["step on", "head", "moved (all weights)", "moved (own weights only)",
                 "loss change", "predicted -lr<g_i,g_j>"], rows)

    def table(self) -> str:
        """The coupling as `probe shared` prints it."""
        from probes.results.text import table

        return (f"coupling: one gradient step (lr {self.params['learning_rate']}) on one task's "
                "loss; mean |change| of each head's output\n"
                + table(*self.table_rows(), align="llrrrr"))

    def to_json(self) -> dict:
        return {"heads": list(self.heads), "moved": self.moved.tolist(),
                "moved_control": self.moved_control.tolist(),
                "loss_change": self.loss_change.tolist(), "predicted": self.predicted.tolist(),
                "loss": self.loss.tolist(),
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
            of the mean loss over these N samples (from `probes.methods.taskgrads.task_gradients`);
            computed here when None.
    """
    del rng
    if not learning_rate > 0:
        raise ValueError(f"Expected a learning rate > 0; received {learning_rate}")
    heads = pdata.output_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    ys = pdata.canonical_labels(model, labels, xs[0].shape[0])
    variables = list(model.trainable_weights)
    losses = head_losses(model)
    if gradients is None:
        gradients = _full_gradients(gradient_function(model, variables), xs, ys, batch_size)
    grads = gradients  # H x V, averaged over samples
    if len(grads) != len(heads) or any(len(g) != len(variables) for g in grads):
        raise ValueError(f"Expected gradients for {len(heads)} heads x {len(variables)} "
                         f"variables; received {len(grads)} x {[len(g) for g in grads]}")
    forward = stateless_forward(model)

    def outputs(values):  # H x (N, C), every pass through the one compiled function
        return run_all(lambda chunk: forward(values, chunk), xs, batch_size)

    theta = current_values(model)
    before_out = outputs(theta)
    before_loss = mean_losses(before_out, ys, losses)
    h = len(heads)
    moved, control = np.zeros((h, h)), np.zeros((h, h))
    change, predicted = np.zeros((h, h)), np.zeros((h, h))
    own = []
    flat = [np.concatenate([g.ravel() for g in gh]) for gh in grads]
    for j in range(h):
        after = outputs(stepped(model, theta, variables, grads[j], learning_rate))
        moved[j] = _moved(before_out, after)
        change[j] = mean_losses(after, ys, losses) - before_loss
        mine = {id(v) for v in own_variables(model, heads[j])}
        own.append(len(mine))
        control[j] = _moved(before_out, outputs(stepped(model, theta, variables, grads[j],
                                                        learning_rate, only=mine)))
        predicted[j] = [-learning_rate * flat[i] @ flat[j] for i in range(h)]
    return Coupling(heads=heads, moved=moved, moved_control=control, loss_change=change,
                    predicted=predicted, loss=before_loss, own=tuple(own),
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

    from probes.engine import backends

    variables, groups = variable_groups(model)
    heads = pdata.output_names(model)
    # Tensors once: the fixed batch is not converted again at every record.
    xs = [keras.ops.convert_to_tensor(np.asarray(x, np.float32)) for x in probe_inputs]
    ys = [keras.ops.convert_to_tensor(np.asarray(y, np.float64).reshape(len(y), -1))
          for y in probe_labels]
    grads_fn = gradient_function(model, variables) if groups else None
    losses = head_losses(model)

    def stepped_losses(values, xs, ys):  # the losses with the shared weights stepped, stateless
        return tensor_mean_losses(stateless_outputs(model, values, xs), ys, losses)

    losses_fn = backends.get().compile(stepped_losses, model)

    class Monitor(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.records = 0, []
            self.seconds = 0.0  # spent measuring (the trainer's progress line shows it)

        def on_train_batch_begin(self, batch, logs=None):
            if grads_fn is not None and self.step % every == 0:
                started = time.perf_counter()
                self.records.append(self._measure())
                self.seconds += time.perf_counter() - started
            self.step += 1

        def _measure(self):
            per, grads = grads_fn(xs, ys)
            grads = [[np.asarray(g, np.float64) for g in gh] for gh in grads]
            norms, cosine = pair_statistics(grads, groups)
            base = np.asarray(per, np.float64)
            affinity = np.zeros((len(heads), len(heads)))
            theta = current_values(model)
            for i in range(len(heads)):
                after = losses_fn(stepped(model, theta, variables, grads[i], lookahead_lr),
                                  xs, ys)
                affinity[i] = 1 - np.asarray(after, np.float64) / np.maximum(base, 1e-12)
            return {"step": self.step, "losses": base.tolist(), "norms": norms.tolist(),
                    "cosine": cosine.tolist(), "affinity": affinity.tolist()}

        def record(self) -> dict:
            return {"heads": list(heads), "groups": list(groups), "every": every,
                    "lookahead_lr": lookahead_lr, "probe_samples": int(xs[0].shape[0]),
                    "records": self.records}

    return Monitor()


def record_table(record: dict) -> str:
    """The training monitor's record (`callback.record()`, a run's taskgrads.json) as text: per
    record the losses, the cosines of every pair of heads and the lookahead affinities, then
    the conflict rate over training."""
    from probes.results.text import table

    heads = record["heads"]
    h = len(heads)
    pairs = [(a, b) for a in range(h) for b in range(a + 1, h)]
    others = [(a, b) for a in range(h) for b in range(h) if a != b]
    group = len(record["groups"]) - 1  # "(all shared)" when there are several
    rows = []
    for r in record["records"]:
        rows.append([r["step"]] + [f"{x:.3f}" for x in r["losses"]]
                    + [f"{r['cosine'][group][a][b]:+.3f}" for a, b in pairs]
                    + [f"{r['affinity'][a][b]:+.2e}" for a, b in others])
    cos = np.array([[r["cosine"][group][a][b] for a, b in pairs] for r in record["records"]])
    return "\n".join([
        f"over training (every {record['every']} steps, {record['probe_samples']} validation "
        "pairs):",
        table(["step"] + [f"loss {x}" for x in heads]
              + [f"cos {heads[a]}.{heads[b]}" for a, b in pairs]
              + [f"affinity {heads[a]}->{heads[b]}" for a, b in others], rows),
        f"conflict rate over training ({record['groups'][group]}): "
        + ", ".join(f"{heads[a]}.{heads[b]} {np.mean(cos[:, k] < 0):.2f}"
                    for k, (a, b) in enumerate(pairs))])
