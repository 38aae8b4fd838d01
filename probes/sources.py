"""What a command probes: a built-in variant's cached run, or a user's model and data file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from mtl_models import runs
from mtl_models.onehot import OneHot
from mtl_models.tweets import INPUTS_OF_SET
from probes import data as pdata


@dataclasses.dataclass(frozen=True)
class Source:
    """A model and the samples to probe it on.

    Attributes:
        model: the Keras model.
        name: its identity in results (variant name or file path).
        inputs: {input name: (N, ...) array, or a lazy OneHot for a run}.
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
# A run's held-out set is extended with generated pairs up to this many (codes: 1.1 kB a pair;
# the one-hot rows are encoded per chunk).
MAX_RUN_SAMPLES = 100_000


def _samples(samples: int | None, available: int, what: str) -> int:
    """The requested sample count, or the default capped at what is available."""
    if samples is None:
        return min(DEFAULT_SAMPLES, available)
    if samples > available:
        raise ValueError(f"Expected --samples <= {available}, the samples in {what}; "
                         f"received {samples}")
    return samples


def from_run(run: runs.Run, samples: int | None,
             report: Callable[[str], None] = lambda line: None) -> Source:
    """The first `samples` held-out pairs of a trained run (default: 256, or all the saved
    ones if fewer), as lazy one-hot arrays; pairs asked for beyond the saved held-out set are
    generated deterministically (see `Run.heldout`)."""
    if samples is None:
        samples = min(DEFAULT_SAMPLES, run.config.n_heldout)
    samples = _samples(samples, MAX_RUN_SAMPLES, f"a run (at most {MAX_RUN_SAMPLES}: the "
                                                 "saved held-out pairs, then generated ones)")
    tweets, labels = run.heldout(samples, report=report)
    features = run.config.features
    inputs = {name: OneHot(getattr(tweets, field), features)
              for name, field in INPUTS_OF_SET.items()}
    return Source(model=run.model(), name=run.config.variant, inputs=inputs, labels=labels,
                  run_dir=run.path)


def from_files(model_path, data_path, samples: int | None, unsafe: bool = False,
               custom_modules=()) -> Source:
    """A user's functional model and .npz data (first `samples` rows, default 256 or all)."""
    model = pdata.load_model(model_path, unsafe=unsafe, custom_modules=custom_modules)
    inputs, labels, ignored = pdata.load_npz(data_path, model)
    n = pdata.canonical_inputs(model, inputs, f"data in {data_path}")[0].shape[0]
    if labels is not None:
        pdata.canonical_labels(model, labels, n)  # named errors now, not after the probe
    samples = _samples(samples, n, str(data_path))
    inputs = {k: v[:samples] for k, v in inputs.items()}
    labels = None if labels is None else {k: v[:samples] for k, v in labels.items()}
    return Source(model=model, name=str(model_path), inputs=inputs, labels=labels,
                  run_dir=None, notes=_notes(data_path, pdata.output_names(model), labels,
                                             ignored))


def _notes(data_path, heads, labels, ignored) -> tuple[str, ...]:
    """What the user should know about their data file: ignored arrays, labels used or not."""
    notes = [f"ignored arrays in {data_path}: {', '.join(ignored)}"] if ignored else []
    some = [h for h in heads if h in ignored]
    if labels is not None:
        notes.append(f"labels for every head ({', '.join(heads)}): loss effects computed")
    elif some:
        lacking = ", ".join(h for h in heads if h not in some)
        notes.append(f"labels for {', '.join(some)} but none for {lacking}: loss effects "
                     "need every head, not computed")
    else:
        notes.append(f"no labels in the data (arrays named like the heads: "
                     f"{', '.join(heads)}): loss effects are not computed")
    return tuple(notes)
