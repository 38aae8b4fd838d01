"""What a command probes: a built-in variant's cached run, or a user's model and data file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mtl_models import runs
from mtl_models.tweets import one_hot
from probes import data as pdata


@dataclasses.dataclass(frozen=True)
class Source:
    """A model and the samples to probe it on.

    Attributes:
        model: the Keras model.
        name: its identity in results (variant name or file path).
        inputs: {input name: (N, ...) array}.
        labels: {head name: (N,) array} or None.
        run_dir: where results are saved by default (a variant's run directory), or None.
        notes: lines for the user (e.g. ignored arrays).
    """

    model: object
    name: str
    inputs: dict
    labels: dict | None
    run_dir: Path | None
    notes: tuple[str, ...] = ()


DEFAULT_SAMPLES = 256


def _samples(samples: int | None, available: int, what: str) -> int:
    """The requested sample count, or the default capped at what is available."""
    if samples is None:
        return min(DEFAULT_SAMPLES, available)
    if samples > available:
        raise ValueError(f"Expected --samples <= {available}, the samples in {what}; "
                         f"received {samples}")
    return samples


def from_run(run: runs.Run, samples: int | None) -> Source:
    """The first `samples` held-out pairs of a trained run (default 256), one-hot encoded."""
    tweets, labels = run.heldout()
    samples = _samples(samples, len(tweets), f"the held-out data of {run.path}")
    sub = tweets.take(np.arange(samples))
    features = run.config.features
    inputs = {"tweet_a": one_hot(sub.codes_a, features), "tweet_b": one_hot(sub.codes_b, features)}
    return Source(model=run.model(), name=run.config.variant, inputs=inputs,
                  labels={h: y[:samples] for h, y in labels.items()}, run_dir=run.path)


def from_files(model_path, data_path, samples: int | None, unsafe: bool = False) -> Source:
    """A user's functional model and .npz data (first `samples` rows, default 256 or all)."""
    model = pdata.load_model(model_path, unsafe=unsafe)
    inputs, labels, ignored = pdata.load_npz(data_path, model)
    n = pdata.canonical_inputs(model, inputs, f"data in {data_path}")[0].shape[0]
    samples = _samples(samples, n, str(data_path))
    notes = (f"ignored arrays in {data_path}: {', '.join(ignored)}",) if ignored else ()
    if labels is None:
        notes += ("no labels for every head in the data: loss effects are not computed",)
    inputs = {k: v[:samples] for k, v in inputs.items()}
    labels = None if labels is None else {k: v[:samples] for k, v in labels.items()}
    return Source(model=model, name=str(model_path), inputs=inputs, labels=labels,
                  run_dir=None, notes=notes)
