"""The Python API: one call per probe family, with the command line's defaults.

Every probe call takes `(model, data, *, labels=None, seed=0, batch_size=..., samples=None)`;
the families with settings of their own (ablate, attribute, coupling, interaction,
faithfulness, sanity) take them as keywords too, and an unknown keyword is a TypeError that
names it:
  model  a functional or Sequential Keras model, or the path of a .keras file (loaded without
         running code from it; `load_model` takes --unsafe and --custom-module's equivalents);
  data   {input name: array} (or lazy inputs, probes.model.lazy), or the path of an .npz whose
         arrays are keyed by input name (arrays keyed by head name are the labels);
  seed   the one seed; each family draws from its own named stream (probes.results.seeds), so
         `probes.ablate(model, data, seed=3)` equals `probe ablate --seed 3`.
`samples` takes the first N rows. Model, data, labels and samples are resolved in one place
(probes.model.sources.resolve), as for the commands. Results answer by name, print as tables,
and save and load.
"""

from __future__ import annotations

from pathlib import Path

from probes.model import data as pdata
from probes.model.sources import resolve
from probes.results.seeds import probe_generator


def load_model(path, *, unsafe: bool = False, custom_modules=()):
    """The Keras model in a .keras file (a Sequential as a functional view of its layers);
    code in the file runs only if `unsafe`."""
    return pdata.load_model(path, unsafe=unsafe, custom_modules=custom_modules)


def load_data(model, path) -> tuple[dict, dict | None]:
    """({input name: array}, {head name: labels} or None) from an .npz for `model`."""
    inputs, labels, _ = pdata.load_npz(path, model)
    return inputs, labels


def run(probe: str, model, data, labels, seed, samples, params, shard=None):
    """A registered probe on model and data as a caller gives them (resolved here): `run_on`."""
    return run_on(resolve(model, data, labels, samples), probe, seed, params, shard)


def run_on(src, probe: str, seed, params, shard=None):
    """A registered probe on a resolved source (probes.model.sources.resolve), with the
    family's random stream (shard (K, N) or "K/N" of the samples with `shard`:
    probes.run.shards.run_shard)."""
    from probes.run.registry import PROBES

    if shard is not None:
        from probes.run.shards import run_shard

        return run_shard(probe, src.model, src.inputs, shard=shard, labels=src.labels,
                         seed=seed, model_name=src.name, **params)
    return PROBES[probe](src.model, src.inputs, rng=probe_generator(probe, seed),
                         labels=src.labels, seed=seed, model_name=src.name, **params)


def ablate(model, data, *, labels=None, mode: str = "shuffle", seed: int = 0,
           batch_size: int = 256, samples: int | None = None, shard=None, **params):
    """How far each head moves when each input is ablated (see probes.methods.ablation.ablate for
    the modes and `params`). Returns a ProbeResult: `.verdict(head, input)`, `.share(...)`,
    `print(result)`, `.save(dir)`. With `shard` ("K/N"), only shard K of N of the samples: a
    partial result for `merge`."""
    return run(f"ablation/{mode}", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def attribute(model, data, *, labels=None, method: str = "integrated_gradients",
              seed: int = 0, batch_size: int = 256, samples: int | None = None, shard=None,
              **params):
    """Gradient attributions of every head to every input (see probes.methods.attribution.attribute
    for the methods, `target`, baselines and `params`). Returns a ProbeResult. With `shard`
    ("K/N"), only shard K of N of the samples (integrated gradients then needs `steps`)."""
    return run(f"attribution/{method}", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def merge(parts):
    """The full result from the shards of one run: their results (ProbeResult, Faithfulness
    or Sanity), or the paths of their saved .json files (probes.run.shards.merge: equal to the
    unsharded run's, or ValueError)."""
    from probes.results import resultio
    from probes.run.shards import merge as merge_parts

    return merge_parts([resultio.load(p) if isinstance(p, (str, Path)) else p for p in parts])


def structure(model):
    """What the graph allows (probes.model.graph.Structure): reach per head and input, shared
    layers, call sites. No data needed."""
    from probes.model.graph import GRAPHLESS, no_graph, structure as run

    s = run(resolve(model).model)
    if not s.readable:  # a subclassed model's view, passed as it is
        raise ValueError(no_graph(resolve(model).model, GRAPHLESS))
    return s


def task_gradients(model, data, *, labels=None, seed: int = 0, batch_size: int | None = None,
                   samples: int | None = None):
    """Each task's loss gradient on the shared weights, per mini-batch of `batch_size` (default 64,
    or one batch of every sample if fewer) (probes.methods.taskgrads.Agreement). Needs labels for
    every head."""
    return run("shared/agreement", model, data, labels, seed, samples,
                {"batch_size": batch_size})


def coupling(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
             samples: int | None = None, **params):
    """One gradient step per task (`learning_rate`, default 1e-2) and how far it moves every
    head (probes.methods.coupling.Coupling). Needs labels for every head."""
    return run("shared/coupling", model, data, labels, seed, samples,
                dict(params, batch_size=batch_size))


def decompose(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
              samples: int | None = None):
    """The exact split of each head's pre-activation over the call sites it concatenates
    (probes.methods.paths.Decomposition)."""
    return run("paths/decomposition", model, data, labels, seed, samples,
                {"batch_size": batch_size})


def interaction(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
                samples: int | None = None, **params):
    """The interaction contrast of every pair of inputs for every head (`pairs`,
    `tolerance`) (probes.methods.paths.Interaction; `.summary()` gives the verdicts)."""
    return run("paths/interaction", model, data, labels, seed, samples,
                dict(params, batch_size=batch_size))


def faithfulness(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
                 samples: int | None = None, shard=None, **params):
    """Deletion and insertion curves of the attribution methods (`methods`) on every head and
    input (probes.checks.faithfulness.Faithfulness: `.areas(kind)`, `.table()`). With `shard`
    ("K/N"), only shard K of N of the samples (`merge` puts the shards together)."""
    return run("faithfulness", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def sanity(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
           samples: int | None = None, shard=None, **params):
    """Cascading randomisation of the model's layers and the rank correlation of each
    method's maps (`methods`) with the trained model's (probes.checks.sanity.Sanity: `.verdict`,
    `.interval`, `.table()`). With `shard` ("K/N"), only shard K of N of the samples."""
    return run("sanity", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)
