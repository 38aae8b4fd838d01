"""Every probe, by name, with one signature:

    probe(model, inputs, *, rng, labels=None, seed=None, batch_size=..., model_name=None,
          **params) -> a registered result type (probes.results.resultio)

`inputs` are {input name: array} (or lazy inputs); probes that need no labels or no randomness
accept and ignore them, so a caller (the report's suite, the API, a test) treats them alike.
"""

from __future__ import annotations

from functools import partial

from probes.checks.faithfulness import faithfulness
from probes.checks.sanity import sanity
from probes.methods.ablation import MODES, ablate
from probes.methods.attribution import METHODS, attribute


def _need_labels(labels, probe: str):
    if labels is None:
        raise ValueError(f"Expected labels for every head (arrays named like the model's "
                         f"outputs) to compute task losses for {probe}; received none")


def agreement(model, inputs, *, rng, labels=None, seed=None, batch_size: int | None = None,
              model_name=None):
    """Task gradients on the shared weights per mini-batch of `batch_size` (default 64, or one
    batch of every sample if fewer) (probes.methods.taskgrads.Agreement)."""
    from probes.methods.taskgrads import task_gradients

    _need_labels(labels, "shared/agreement")
    if batch_size is None:
        batch_size = min(64, len(next(iter(inputs.values()))))
    return task_gradients(model, inputs, labels, rng=rng, batch_size=batch_size, seed=seed)[0]


def coupling(model, inputs, *, rng, labels=None, seed=None, batch_size: int = 256,
             model_name=None, learning_rate: float = 1e-2):
    """One gradient step per task and what it moves (probes.methods.coupling.Coupling)."""
    from probes.methods.coupling import coupling as run

    _need_labels(labels, "shared/coupling")
    return run(model, inputs, labels, rng=rng, learning_rate=learning_rate,
               batch_size=batch_size, seed=seed)


def decomposition(model, inputs, *, rng, labels=None, seed=None, batch_size: int = 256,
                  model_name=None):
    """Each head's pre-activation split over its call sites (probes.methods.paths.Decomposition)."""
    from probes.methods.paths import decompose

    return decompose(model, inputs, rng=rng, batch_size=batch_size, seed=seed,
                     model_name=model_name)


def interaction(model, inputs, *, rng, labels=None, seed=None, batch_size: int = 256,
                model_name=None, pairs=None, tolerance: float = 1e-5):
    """Interaction contrasts of every pair of inputs (probes.methods.paths.Interaction)."""
    from probes.methods.paths import interaction as run

    if len(model.inputs) < 2:
        raise ValueError("Expected a model with at least two inputs for the interaction "
                         f"contrast; received {len(model.inputs)}")
    return run(model, inputs, rng=rng, pairs=pairs, tolerance=tolerance,
               batch_size=batch_size, seed=seed, model_name=model_name)


def structure(model, inputs=None, *, rng=None, labels=None, seed=None, batch_size=None,
              model_name=None):
    """What the graph allows (probes.model.graph.Structure); reads no data."""
    from probes.model.graph import structure as run

    return run(model)


PROBES = {f"ablation/{mode}": partial(ablate, mode=mode) for mode in MODES}
PROBES.update({f"attribution/{method}": partial(attribute, method=method) for method in METHODS})
PROBES.update({"shared/agreement": agreement, "shared/coupling": coupling,
               "paths/decomposition": decomposition, "paths/interaction": interaction,
               "structure": structure, "faithfulness": faithfulness,
               "sanity": sanity})
