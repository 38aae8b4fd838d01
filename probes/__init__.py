"""mtl-probe: measure how information flows through Keras multi-task models.

    import probes
    result = probes.ablate("model.keras", "data.npz")      # or a model and a dict of arrays
    result.verdict("head_1", "tweet_b")                     # "structural_zero"
    print(result)                                           # the dependency matrix
    path = result.save("results/")                          # JSON + .npz
    same = probes.load(path)                                # bit for bit
    part = probes.attribute(model, data, steps=32, shard="2/4")  # shard 2 of 4 of the samples
    whole = probes.merge([part1, part2, part3, part4])      # equal to the unsharded run

Importing this package does not import TensorFlow; the probes do when they run.

The library is eight subpackages with one job each, from the bottom layer up: `results` (what a
probe returns, how it is judged and kept), `model` (the one seam to a Keras model), `engine`
(compiled passes), `methods` (the probes), `checks` (faithfulness, sanity), `run` (registry,
suite, shards), then this API (`api`), `testing` (assertions, contracts, the pytest plugin) and
`cli`; each imports only those below it (import-linter contracts in setup.cfg).
"""

from importlib import metadata as _metadata

from probes.api import (
    ablate,
    attribute,
    coupling,
    decompose,
    faithfulness,
    interaction,
    load_data,
    load_model,
    merge,
    sanity,
    structure,
    task_gradients,
)
from probes.engine.devices import use as on_devices
from probes.model.onehot import OneHot, one_hot
from probes.results.result import ProbeResult
from probes.results.resultio import load, save
from probes.results.stats import summarize

try:
    __version__ = _metadata.version("mtl-probe")
except _metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["OneHot", "ProbeResult", "__version__", "ablate", "attribute", "coupling",
           "decompose", "faithfulness", "interaction", "load", "load_data", "load_model",
           "merge", "on_devices", "one_hot", "sanity", "save", "structure", "summarize",
           "task_gradients"]
