"""Task gradients on shared weights: how the heads' losses pull on the weights they share.

For every layer that more than one head uses (from the graph, per call site), each task's loss
gradient with respect to that layer's weights: norms, pairwise cosine similarity and the conflict
rate (share of mini-batches, or of training steps, where the cosine is negative). Yu et al., 2020
("Gradient Surgery for Multi-Task Learning") call negative cosine a conflict; the lookahead task
affinity is from Fifty et al., 2021 ("Efficiently Identifying Task Groupings"). Each task's
loss is its head's loss under the one rule of `probes.model.losses`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from probes.model import data as pdata
from probes.model.graph import structure
from probes.results import resultio
from probes.results.protocol import Result
from probes.results.text import table

ALL_SHARED = "(all shared)"


def shared_layers(model) -> dict[str, tuple[str, ...]]:
    """Layers with trainable weights upstream of more than one head -> those heads."""
    s = structure(model)
    out = {}
    for layer in model.layers:
        heads = s.heads_using(layer.name)
        if layer.trainable_weights and len(heads) > 1:
            out[layer.name] = heads
    return out


def own_variables(model, head: str) -> list:
    """Trainable variables of the layers upstream of `head` and of no other head."""
    s = structure(model)
    return [v for layer in model.layers if s.heads_using(layer.name) == (head,)
            for v in layer.trainable_weights]


def loss_function(model):
    """(xs, ys) -> (H,) mean loss per head: the model's graph run on xs (one tensor per input,
    model order) in inference mode (`probes.model.graphrun.run_graph`: any input and output
    structure, heads in `probes.model.graph.heads` order), each head's loss under the one rule of
    `probes.model.losses`, in keras.ops (for use inside a compiled function,
    probes.engine.backends)."""
    from keras import ops

    from probes.model.graphrun import run_graph
    from probes.model.losses import head_losses, tensor_mean_losses

    losses = head_losses(model)

    def run(xs, ys):
        xs = [ops.cast(x, t.dtype) if x.dtype != t.dtype else x
              for x, t in zip(map(ops.convert_to_tensor, xs), model.inputs)]
        return tensor_mean_losses(run_graph(model, xs), ys, losses)

    return run


def gradient_function(model, variables):
    """A compiled (xs, ys) -> (losses (H,), per head a list of gradients, one per variable);
    one per model and variables, shared by the probes of a process
    (probes.engine.forward.cached)."""
    from probes.engine.forward import cached

    return cached(model, ("task_gradients", tuple(id(v) for v in variables)),
                  lambda: _gradient_function(model, variables))


def _gradient_function(model, variables):
    from probes.engine import backends

    backend = backends.get()
    losses = loss_function(model)

    def run(xs, ys):
        return backend.variable_gradients(lambda: losses(xs, ys), variables)

    return backend.compile(run, model)


def add_weighted(total, grads, weight: float):
    """total + weight * grads, per head and variable (float64); total None starts the sum.
    Batch-mean gradients weighted by batch size / N sum to the mean over all N samples."""
    grads = [[np.asarray(g, np.float64) * weight for g in gh] for gh in grads]
    if total is None:
        return grads
    return [[a + b for a, b in zip(ta, tb)] for ta, tb in zip(total, grads)]


def pair_statistics(grads: list[list[np.ndarray]], groups: dict[str, list[int]]):
    """Norms (G, H) and cosines (G, H, H) of the heads' gradients restricted to each group of
    variables (indices into each head's gradient list)."""
    h = len(grads)
    norms = np.zeros((len(groups), h))
    cosine = np.zeros((len(groups), h, h))
    for g, idx in enumerate(groups.values()):
        vecs = [np.concatenate([np.asarray(grads[k][j], np.float64).ravel() for j in idx])
                for k in range(h)]
        norms[g] = [np.linalg.norm(v) for v in vecs]
        for a in range(h):
            for b in range(h):
                denom = norms[g, a] * norms[g, b]
                cosine[g, a, b] = vecs[a] @ vecs[b] / denom if denom > 0 else 0.0
    return norms, cosine


def variable_groups(model) -> tuple[list, dict[str, list[int]]]:
    """Every shared layer's variables, and the groups: one per shared layer plus all shared."""
    layers = shared_layers(model)
    variables, groups = [], {}
    for name in layers:
        start = len(variables)
        variables.extend(model.get_layer(name).trainable_weights)
        groups[name] = list(range(start, len(variables)))
    if len(groups) > 1:
        groups[ALL_SHARED] = list(range(len(variables)))
    return variables, groups


@resultio.register("agreement")
@dataclasses.dataclass(frozen=True)
class Agreement(Result):
    """Task gradients on the shared weights over mini-batches.

    Attributes:
        heads: (H,); groups: (G,) shared layer names (plus "(all shared)" if several);
        norms: (B, G, H); cosine: (B, G, H, H) per mini-batch; losses: (B, H).
        full_cosine: (G, H, H) of the gradients over all samples together.
    """

    heads: tuple[str, ...]
    groups: tuple[str, ...]
    norms: np.ndarray
    cosine: np.ndarray
    losses: np.ndarray
    full_cosine: np.ndarray
    params: dict

    def conflict_rate(self) -> np.ndarray:
        """(G, H, H) share of mini-batches with negative cosine."""
        return (self.cosine < 0).mean(axis=0)

    def summary(self) -> dict:
        """Per shared group and pair of heads: the mean cosine over mini-batches, the cosine
        over all samples, the conflict rate and the mean norms ((G, H, H) and (G, H))."""
        return {"cosine_mean": self.cosine.mean(axis=0), "cosine_full": self.full_cosine,
                "conflict_rate": self.conflict_rate(), "norm_mean": self.norms.mean(axis=0)}

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): a row per shared group and pair of heads."""
        h, s = len(self.heads), self.summary()
        rows = []
        for g, group in enumerate(self.groups):
            for a in range(h):
                for b in range(a + 1, h):
                    rows.append([group, f"{self.heads[a]} . {self.heads[b]}",
                                 f"{s['cosine_mean'][g, a, b]:.3f}",
                                 f"{s['cosine_full'][g, a, b]:.3f}",
                                 f"{s['conflict_rate'][g, a, b]:.2f}",
                                 f"{s['norm_mean'][g, a]:.3g} / {s['norm_mean'][g, b]:.3g}"])
        return (["layer", "heads", "cosine (mean)", "cosine (all)", "conflict rate", "norms"],
                rows)

    def table(self) -> str:
        """The task gradients' agreement as `probe shared` prints it."""
        return (f"task gradients on the shared weights, {self.params['batches']} mini-batches "
                f"of {self.params['batch_size']}:\n"
                + table(*self.table_rows(), align="llrrrr"))

    def to_json(self) -> dict:
        return {"heads": list(self.heads), "groups": list(self.groups),
                **{k: v.tolist() for k, v in self.summary().items()},
                "cosine": self.cosine.tolist(), "params": self.params}


def agreement(model, inputs, labels, *, rng: np.random.Generator, batch_size: int = 64,
              seed: int | None = None) -> Agreement:
    """Each task's loss gradient on every shared layer, per mini-batch and over all samples.

    Args:
        inputs: {input name: (N, ...)}; labels: {head name: (N,)}; rng shuffles the samples
        into mini-batches of `batch_size` (a last partial batch counts only toward the
        gradients over all samples).
    """
    return task_gradients(model, inputs, labels, rng=rng, batch_size=batch_size, seed=seed)[0]


def task_gradients(model, inputs, labels, *, rng: np.random.Generator, batch_size: int = 64,
                   seed: int | None = None) -> tuple[Agreement, list[list[np.ndarray]]]:
    """`agreement`, and what it computes on the way: per head, the gradient of the mean loss
    over all N samples for every variable of `model.trainable_weights` (float64), the one
    `probes.methods.coupling.coupling` steps along.
    """
    heads = pdata.output_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    ys = pdata.canonical_labels(model, labels, xs[0].shape[0])
    shared, groups = variable_groups(model)
    if not groups:
        raise ValueError("Expected a layer with weights shared by at least two heads; "
                         f"received a model whose heads {list(heads)} share no weights")
    variables = list(model.trainable_weights)
    position = {id(v): k for k, v in enumerate(variables)}
    picks = [position[id(v)] for v in shared]  # shared variable j -> its trainable index
    fn = gradient_function(model, variables)
    n = xs[0].shape[0]
    order = rng.permutation(n)
    full = n - n % batch_size
    batches = [order[a:a + batch_size] for a in range(0, full, batch_size)]
    if not batches:
        raise ValueError(f"Expected at least --batch-size {batch_size} samples; received {n}")
    rest = [order[full:]] if full < n else []
    norms, cosine, losses = [], [], []
    total = None
    for k, rows in enumerate(batches + rest):
        per, grads = fn([np.asarray(x[rows], np.float32) for x in xs], [y[rows] for y in ys])
        grads = [[np.asarray(g, np.float64) for g in gh] for gh in grads]
        if k < len(batches):
            nm, cs = pair_statistics([[gh[j] for j in picks] for gh in grads], groups)
            norms.append(nm)
            cosine.append(cs)
            losses.append(np.asarray(per, np.float64))
        total = add_weighted(total, grads, len(rows) / n)
    _, full_cosine = pair_statistics([[gh[j] for j in picks] for gh in total], groups)
    return Agreement(heads=heads, groups=tuple(groups), norms=np.stack(norms),
                     cosine=np.stack(cosine), losses=np.stack(losses),
                     full_cosine=full_cosine,
                     params={"batch_size": batch_size, "batches": len(batches), "seed": seed,
                             "samples": int(len(batches) * batch_size),
                             "samples_full": int(n)}), total
