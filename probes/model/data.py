"""Models and data at the edge: names, shapes, dtypes, finiteness (files: probes.model.files).

Everything here raises ValueError("Expected ...; received ...") naming the file, input or head.
"""

from __future__ import annotations

import math

import numpy as np

from probes.model.files import (  # noqa: F401 (re-exported)
    custom_objects,
    load_model,
    load_npz,
    loaded_model,
)
from probes.model.graph import head_aliases, input_names, output_names, token_sites
from probes.model.lazy import is_lazy

__all__ = ["by_name", "canonical_inputs", "canonical_labels", "custom_objects", "input_names",
           "load_model", "load_npz", "loaded_model", "output_names"]

INT32 = np.iinfo(np.int32)


def _expected_shape(tensor) -> tuple:
    return tuple(tensor.shape)[1:]


def canonical_inputs(model, inputs, what: str = "inputs") -> list:
    """Arrays in model order, checked against the model's input shapes and dtypes.

    Args:
        inputs: {input name: array} or a sequence of arrays in model order. A lazy
            input (probes.model.lazy) is checked by shape and dtype only and returned as it is
            (never materialized).
    Returns:
        Per input, (N, ...) float32 arrays, int32 for token inputs (integer model inputs, and
        inputs of any dtype that only feed Embeddings: see probes.model.graph.token_sites), or
        lazy inputs.
    """
    names = input_names(model)
    if isinstance(inputs, dict):
        arrays = by_name(inputs, names, what)
    else:
        arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(arrays) != len(names):
            raise ValueError(f"Expected {len(names)} {what} arrays {list(names)}; "
                             f"received {len(arrays)}")
    tokens = token_sites(model)
    out = [_canonical(name, tensor, x, what, i in tokens) for i, (name, tensor, x) in
           enumerate(zip(names, model.inputs, arrays))]
    counts = {x.shape[0] for x in out}
    if len(counts) != 1:
        raise ValueError(f"Expected the same number of samples in every input; received "
                         f"{dict(zip(names, (x.shape[0] for x in out)))}")
    if out[0].shape[0] < 1:
        raise ValueError(f"Expected at least one sample in {what}; received 0")
    return out


def _classes(y: np.ndarray, width: int, head: str) -> np.ndarray:
    """(N,) integer classes -> (N, width) one-hot rows."""
    if y.dtype.kind not in "iuf" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) \
            or (y.size and (y.min() < 0 or y.max() >= width)):
        raise ValueError(f"Expected integer classes in [0, {width}) or ({len(y)}, {width}) "
                         f"rows for softmax head {head!r}; received {y.dtype} values")
    return np.eye(width)[y.astype(int)]


def by_name(mapping: dict, names, what: str) -> list:
    """`mapping`'s values in the order of `names`; ValueError naming the missing ones."""
    missing = [n for n in names if n not in mapping]
    if missing:
        raise ValueError(f"Expected {what} for every model input {list(names)}; received "
                         f"none for {missing}")
    return [mapping[n] for n in names]


def _canonical(name, tensor, x, what, token: bool = False):
    """One input: shape and dtype checked, cast to the model's dtype (int32 for a token input
    whatever its declared dtype), finite."""
    lazy = is_lazy(x)
    if not lazy:
        x = np.asarray(x)
    want = _expected_shape(tensor)
    if x.ndim != len(want) + 1 or any(w is not None and w != s
                                      for w, s in zip(want, x.shape[1:])):
        shape = ("N",) + tuple("?" if w is None else w for w in want)
        raise ValueError(f"Expected {what} {name!r} of shape ({', '.join(map(str, shape))}); "
                         f"received {x.shape}")
    if str(tensor.dtype) == "string":  # text or categories the model encodes itself
        if lazy or x.dtype.kind not in "US":
            raise ValueError(f"Expected strings for {what} {name!r} (a numpy unicode array, "
                             f"or a list of str); received dtype {x.dtype}")
        return x
    model_int = "int" in str(tensor.dtype) or token
    if x.dtype.kind not in "iufb":
        raise ValueError(f"Expected numeric {what} {name!r}; received dtype {x.dtype}")
    if token and not lazy and x.dtype.kind == "f" and x.size:
        integral = np.all(np.isfinite(x)) and np.all(x == np.round(x))
        if not integral:
            raise ValueError(f"Expected integer token ids for {what} {name!r} (it feeds only "
                             f"Embedding layers); received non-integer values")
        x = x.astype(np.int64)
    if model_int and x.dtype.kind not in "iu":
        raise ValueError(f"Expected integer token ids for {what} {name!r}; "
                         f"received dtype {x.dtype}")
    if lazy:  # a lazy input's values are checked where it is made
        return x
    if model_int and x.size and (x.min() < INT32.min or x.max() > INT32.max):
        raise ValueError(f"Expected token ids for {what} {name!r} within int32; received "
                         f"values in [{x.min()}, {x.max()}]")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
        x = x.astype(np.int32 if model_int else np.float32, copy=False)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"Expected finite values in {what} {name!r}; "
                         f"received {bad} NaN or infinite values (after casting to float32)")
    return x


def canonical_sample_ids(sample_ids, n: int, background_size: int) -> np.ndarray:
    """(N,) int row of each sample in the background (default 0..N-1), checked."""
    if sample_ids is None:
        return np.arange(n)
    ids = np.asarray(sample_ids)
    if (ids.shape != (n,) or ids.dtype.kind not in "iu" or ids.min() < 0
            or ids.max() >= background_size):
        raise ValueError(f"Expected sample_ids: {n} integers in [0, {background_size}); "
                         f"received {ids!r}")
    return ids


def canonical_labels(model, labels, n: int) -> list[np.ndarray]:
    """Labels in head order, each (N, C) float64, for every head.

    Args:
        labels: {head name: (N,) or (N, ...) array with C values per row}, C the number of
            the head's output units; a head may be named by its dict key or its layer. A
            softmax head (one output axis) also takes (N,) integer classes, one-hot encoded.
    """
    from probes.model.losses import loss_kinds

    heads = output_names(model)
    kinds = loss_kinds(model)
    labels = {head_aliases(model).get(k, k): v for k, v in labels.items()}
    missing = [h for h in heads if h not in labels]
    if missing:
        raise ValueError(f"Expected labels for every head {list(heads)}; "
                         f"received none for {missing}")
    out = []
    for head, tensor, kind in zip(heads, model.outputs, kinds):  # model.outputs order
        y = np.asarray(labels[head])
        units = tuple(tensor.shape)[1:]
        width = math.prod(units) if None not in units else None
        if (kind == "categorical_crossentropy" and len(units) == 1 and width and width > 1
                and y.ndim == 1 and y.shape[0] == n):
            y = _classes(y, width, head)
        if y.dtype.kind not in "iufb":
            raise ValueError(f"Expected numeric labels for head {head!r}; received dtype "
                             f"{y.dtype}")
        if y.ndim < 1 or y.shape[0] != n:
            raise ValueError(f"Expected {n} labels for head {head!r}; received an array of "
                             f"shape {y.shape}")
        y = y.astype(np.float64).reshape(n, -1) if y.size else y.reshape(n, 0)
        if width is not None and y.shape[1] != width:
            shapes = f"({n},) or ({n}, {width})" if width == 1 else f"({n}, {width})"
            raise ValueError(f"Expected labels for head {head!r} with {width} value(s) per "
                             f"sample, shape {shapes}; received {np.shape(labels[head])}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"Expected finite labels for head {head!r}; received NaN or inf")
        out.append(y)
    return out
