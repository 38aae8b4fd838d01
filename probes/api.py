"""The Python API: one call per probe family, with the command line's defaults.

Every call takes `(model, data, *, labels=None, seed=0, batch_size=..., **params)`:
  model  a functional Keras model, or the path of a .keras file (loaded without running code
         from it; `load_model` takes --unsafe and --custom-module's equivalents);
  data   {input name: array} (or lazy inputs, probes.lazy), or the path of an .npz whose
         arrays are keyed by input name (arrays keyed by head name are the labels);
  seed   the one seed; each family draws from its own named stream (probes.seeds), so
         `probes.ablate(model, data, seed=3)` equals `probe ablate --seed 3`.
`samples` takes the first N rows. Results answer by name, print as tables, and save and load.
"""

from __future__ import annotations

from pathlib import Path

from probes import data as pdata
from probes.seeds import generator


def load_model(path, *, unsafe: bool = False, custom_modules=()):
    """A functional Keras model from a .keras file; code in the file runs only if `unsafe`."""
    return pdata.load_model(path, unsafe=unsafe, custom_modules=custom_modules)


def load_data(path, model) -> tuple[dict, dict | None]:
    """({input name: array}, {head name: labels} or None) from an .npz for `model`."""
    inputs, labels, _ = pdata.load_npz(path, model)
    return inputs, labels


def resolve(model, data, labels=None, samples=None):
    """(model, inputs, labels, name): paths loaded, the first `samples` rows taken."""
    name = None
    if isinstance(model, (str, Path)):
        name, model = str(model), pdata.loaded_model(model)
    if isinstance(data, (str, Path)):
        data, found = load_data(data, model)
        labels = found if labels is None else labels
    if not isinstance(data, dict):
        names = pdata.input_names(model)
        data = dict(zip(names, data if isinstance(data, (list, tuple)) else [data]))
    if samples is not None:
        if int(samples) < 1:
            raise ValueError(f"Expected samples >= 1; received {samples}")
        data = {k: v[:int(samples)] for k, v in data.items()}
        labels = None if labels is None else {k: v[:int(samples)] for k, v in labels.items()}
    return model, data, labels, name or model.name


def run(probe: str, model, data, labels, seed, samples, params, shard=None):
    """A registered probe on resolved model and data, with the family's random stream (shard
    (K, N) or "K/N" of the samples with `shard`: probes.shards.run_shard)."""
    from probes.registry import PROBES
    from probes.suite import STREAMS

    model, data, labels, name = resolve(model, data, labels, samples)
    if shard is not None:
        from probes.shards import run_shard

        return run_shard(probe, model, data, shard=shard, labels=labels, seed=seed,
                         model_name=name, **params)
    rng = generator(seed, STREAMS.get(probe.split("/")[0], "probe"))
    return PROBES[probe](model, data, rng=rng, labels=labels, seed=seed, model_name=name,
                         **params)


def ablate(model, data, *, labels=None, mode: str = "shuffle", seed: int = 0,
           batch_size: int = 256, samples: int | None = None, shard=None, **params):
    """How far each head moves when each input is ablated (see probes.ablation.ablate for
    the modes and `params`). Returns a ProbeResult: `.verdict(head, input)`, `.share(...)`,
    `print(result)`, `.save(dir)`. With `shard` ("K/N"), only shard K of N of the samples: a
    partial result for `merge`."""
    return run(f"ablation/{mode}", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def attribute(model, data, *, labels=None, method: str = "integrated_gradients",
              seed: int = 0, batch_size: int = 256, samples: int | None = None, shard=None,
              **params):
    """Gradient attributions of every head to every input (see probes.attribution.attribute
    for the methods, `target`, baselines and `params`). Returns a ProbeResult. With `shard`
    ("K/N"), only shard K of N of the samples (integrated gradients then needs `steps`)."""
    return run(f"attribution/{method}", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def merge(parts):
    """The full result from the shards of one run: their results (ProbeResult, Faithfulness
    or Sanity), or the paths of their saved .json files (probes.shards.merge: equal to the
    unsharded run's, or ValueError)."""
    from probes import resultio
    from probes.shards import merge as merge_parts

    return merge_parts([resultio.load(p) if isinstance(p, (str, Path)) else p for p in parts])


def structure(model, data=None, **_):
    """What the graph allows (probes.graph.Structure): reach per head and input, shared
    layers, call sites. No data needed."""
    from probes.graph import structure as run

    if isinstance(model, (str, Path)):
        model = pdata.loaded_model(model)
    return run(model)


def task_gradients(model, data, *, labels=None, seed: int = 0, batch_size: int | None = None,
                   samples: int | None = None):
    """Each task's loss gradient on the shared weights, per mini-batch of `batch_size` (default
    64, or one batch of every sample if fewer) (probes.taskgrads.Agreement). Needs labels for
    every head."""
    return run("shared/agreement", model, data, labels, seed, samples,
                {"batch_size": batch_size})


def coupling(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
             samples: int | None = None, **params):
    """One gradient step per task (`learning_rate`, default 1e-2) and how far it moves every
    head (probes.coupling.Coupling). Needs labels for every head."""
    return run("shared/coupling", model, data, labels, seed, samples,
                dict(params, batch_size=batch_size))


def decompose(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
              samples: int | None = None):
    """The exact split of each head's pre-activation over the call sites it concatenates
    (probes.paths.Decomposition)."""
    return run("paths/decomposition", model, data, labels, seed, samples,
                {"batch_size": batch_size})


def interaction(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
                samples: int | None = None, **params):
    """The interaction contrast of every pair of inputs for every head (`pairs`,
    `tolerance`) (probes.paths.Interaction; `.summary()` gives the verdicts)."""
    return run("paths/interaction", model, data, labels, seed, samples,
                dict(params, batch_size=batch_size))


def faithfulness(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
                 samples: int | None = None, shard=None, **params):
    """Deletion and insertion curves of the attribution methods (`methods`) on every head and
    input (probes.faithfulness.Faithfulness: `.areas(kind)`, `.table()`). With `shard`
    ("K/N"), only shard K of N of the samples (`merge` puts the shards together)."""
    return run("faithfulness", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)


def sanity(model, data, *, labels=None, seed: int = 0, batch_size: int = 256,
           samples: int | None = None, shard=None, **params):
    """Cascading randomisation of the model's layers and the rank correlation of each
    method's maps (`methods`) with the trained model's (probes.sanity.Sanity: `.verdict`,
    `.interval`, `.table()`). With `shard` ("K/N"), only shard K of N of the samples."""
    return run("sanity", model, data, labels, seed, samples,
               dict(params, batch_size=batch_size), shard)
