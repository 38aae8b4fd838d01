"""What a probe runs on: a model, the samples to probe it on, and where results go.

`resolve` is the one place that turns what a caller gives (a model or the path of a .keras
file; inputs as a dict, a list, one array or the path of an .npz; labels; a sample count) into
a `Source`: the Python API, the commands, the contracts, the pytest plugin and the report all
call it. A built-in variant's run is turned into model and inputs by probes.cli.runsource (the
only place that knows the synthetic tweets), then resolved here too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from probes.model import data as pdata
from probes.model.encoded import encode, encoding
from probes.model.graph import called_view, functional, is_subclassed, output_names


@dataclasses.dataclass(frozen=True)
class Source:
    """A model and the samples to probe it on.

    Attributes:
        model: the functional model the probes run: the user's own, or a view of its layers
            (a Sequential's, a subclassed model's called on the data, or the part after the
            model's own preprocessing of strings and categories: probes.model.encoded).
        name: its identity in results (variant name or file path).
        inputs: {input name: (N, ...) array, or a lazy input (probes.model.lazy)}; an
            input the model encodes itself as its encoding.
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


def requested_samples(samples: int | None, available: int, what: str, *,
                      default: int | None = DEFAULT_SAMPLES, option: str = "--samples") -> int:
    """The requested sample count (checked against the `available` samples of `what`), or
    the `default` capped at what is available (None: all of them)."""
    if samples is None:
        return available if default is None else min(default, available)
    if int(samples) < 1:
        raise ValueError(f"Expected {option} >= 1; received {samples}")
    if int(samples) > available:
        raise ValueError(f"Expected {option} <= {available}, the samples in {what}; "
                         f"received {samples}")
    return int(samples)


def resolve(model, data=None, labels=None, samples: int | None = None, *,
            default_samples: int | None = None, unsafe: bool = False, custom_modules=(),
            name: str | None = None, run_dir=None, what: str = "samples") -> Source:
    """The model and the first `samples` rows of its data, checked, as a Source.

    Args:
        model: a Keras model, or the path of a .keras file (loaded once per process without
            running code from it unless `unsafe`; `custom_modules` as for load_model).
        data: {input name: array or lazy input}, a list or one array in input order, the
            path of an .npz (keyed by input name or arr_0..; arrays named like every head
            are the labels), or None (the graph alone: no inputs).
        labels: {head name: (N,) array}; given ones win over an .npz's.
        samples: the first N rows; None takes `default_samples` rows (capped at what there
            is), or all of them.
        name: the model's name in results [default: the file's path, else model.name].
        run_dir: where results go by default (a variant's run), else None.
        what: the option that asked for `samples`, for the error ("--samples" on the CLI).
    Raises:
        ValueError: a file that cannot be read, data the model does not take (named), labels
            of another length, or more samples asked for than the data has.
    """
    notes, ignored = (), []
    if isinstance(model, (str, Path)):
        name = name or str(model)
        model = pdata.loaded_model(model, unsafe=unsafe, custom_modules=custom_modules)
    where, data_path = "inputs", None
    if is_subclassed(model) and isinstance(data, (str, Path)):  # the data name its inputs
        where, data_path = f"data in {data}", str(data)
        data, found = _split_labels(model, pdata.load_npz(data, None)[0])
        labels = found if labels is None else labels
    # a Sequential or subclassed model as a functional view; the user's own is unchanged
    model = functional(model, like=data)
    name = name or model.name
    if data is None:
        return Source(model=model, name=name, inputs={}, labels=None, run_dir=run_dir)
    if isinstance(data, (str, Path)):
        where = f"data in {data}"
        data_path, (data, found, ignored) = str(data), pdata.load_npz(data, model)
        labels = found if labels is None else labels
    elif not isinstance(data, dict):
        data = dict(zip(pdata.input_names(model),
                        data if isinstance(data, (list, tuple)) else [data]))
    # Checked and in the model's dtypes once, here: the probes' own conversion is then a no-op.
    data = dict(zip(pdata.input_names(model), pdata.canonical_inputs(model, data, where)))
    n = next(iter(data.values())).shape[0]
    if labels is not None:
        pdata.canonical_labels(model, labels, n)  # named errors now, not after the probe
    samples = requested_samples(samples, n, data_path or "the data", default=default_samples,
                                option=what)
    if samples < n:
        data = {k: v[:samples] for k, v in data.items()}
        labels = None if labels is None else {k: v[:samples] for k, v in labels.items()}
    if data_path is not None:
        notes = _notes(data_path, pdata.output_names(model), labels, ignored)
    enc = encoding(model)
    if enc is not None:  # strings and categories: probed from the model's own encoding
        names = list(data)
        data = dict(zip(names, encode(enc, list(data.values()))))
        model, notes = enc.view, notes + enc.notes(names)
    return Source(model=model, name=name, inputs=data, labels=labels, run_dir=run_dir,
                  notes=notes)


def _split_labels(model, arrays: dict) -> tuple[dict, dict | None]:
    """A subclassed model's .npz arrays as (inputs, labels): the arrays named like its heads
    (found by calling it on the others; output_K for a model that returns a list) are the
    labels, used when every head has one."""
    unlabelled = {k: v for k, v in arrays.items() if not k.startswith("output_")}
    heads = output_names(called_view(model, unlabelled or arrays))
    named = [k for k in arrays if k in heads]
    inputs = {k: v for k, v in arrays.items() if k not in named}
    labels = {k: arrays[k] for k in named} if len(named) == len(heads) else None
    return inputs, labels


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
