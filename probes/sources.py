"""What a command probes: a model, the samples to probe it on, and where results go.

`from_files` reads a user's model and data files; a built-in variant's run is read by
probes.cli.runsource (the only place that knows the synthetic tweets).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from probes import data as pdata


@dataclasses.dataclass(frozen=True)
class Source:
    """A model and the samples to probe it on.

    Attributes:
        model: the Keras model.
        name: its identity in results (variant name or file path).
        inputs: {input name: (N, ...) array, or a lazy input (probes.lazy)}.
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


DEFAULT_SAMPLES = 256  # samples a command probes unless told
DEFAULT_BATCH = 256  # rows per pass: bounds memory


def requested_samples(samples: int | None, available: int, what: str) -> int:
    """The requested sample count, or the default capped at what is available."""
    if samples is None:
        return min(DEFAULT_SAMPLES, available)
    if samples > available:
        raise ValueError(f"Expected --samples <= {available}, the samples in {what}; "
                         f"received {samples}")
    return samples


def from_files(model_path, data_path, samples: int | None, unsafe: bool = False,
               custom_modules=()) -> Source:
    """A user's functional model and .npz data (first `samples` rows, default 256 or all)."""
    model = pdata.loaded_model(model_path, unsafe=unsafe, custom_modules=custom_modules)
    inputs, labels, ignored = pdata.load_npz(data_path, model)
    n = pdata.canonical_inputs(model, inputs, f"data in {data_path}")[0].shape[0]
    if labels is not None:
        pdata.canonical_labels(model, labels, n)  # named errors now, not after the probe
    samples = requested_samples(samples, n, str(data_path))
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
