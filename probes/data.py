"""Models and data at the edge: loading, names, shapes, dtypes, finiteness.

Everything here raises ValueError("Expected ...; received ...") naming the file, input or head.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from probes.graph import input_names, output_names

__all__ = ["input_names", "output_names", "canonical_inputs", "canonical_labels", "load_model",
           "load_npz"]


def _expected_shape(tensor) -> tuple:
    return tuple(tensor.shape)[1:]


def canonical_inputs(model, inputs, what: str = "inputs") -> list[np.ndarray]:
    """Arrays in model order, checked against the model's input shapes and dtypes.

    Args:
        inputs: {input name: array} or a sequence of arrays in model order.
    """
    names = input_names(model)
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"Expected {what} for every model input {list(names)}; "
                             f"received none for {missing}")
        arrays = [inputs[n] for n in names]
    else:
        arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(arrays) != len(names):
            raise ValueError(f"Expected {len(names)} {what} arrays {list(names)}; "
                             f"received {len(arrays)}")
    out = []
    for name, tensor, x in zip(names, model.inputs, arrays):
        x = np.asarray(x)
        want = _expected_shape(tensor)
        if x.ndim != len(want) + 1 or any(w is not None and w != s
                                          for w, s in zip(want, x.shape[1:])):
            shape = ("N",) + tuple("?" if w is None else w for w in want)
            raise ValueError(f"Expected {what} {name!r} of shape ({', '.join(map(str, shape))}); "
                             f"received {x.shape}")
        model_int = "int" in str(tensor.dtype)
        if x.dtype.kind not in "iufb":
            raise ValueError(f"Expected numeric {what} {name!r}; received dtype {x.dtype}")
        if model_int and x.dtype.kind not in "iu":
            raise ValueError(f"Expected integer token ids for {what} {name!r}; "
                             f"received dtype {x.dtype}")
        x = x.astype(np.int32 if model_int else np.float32, copy=False)
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"Expected finite values in {what} {name!r}; "
                             f"received {bad} NaN or infinite values")
        out.append(x)
    counts = {x.shape[0] for x in out}
    if len(counts) != 1:
        raise ValueError(f"Expected the same number of samples in every input; received "
                         f"{dict(zip(names, (x.shape[0] for x in out)))}")
    if out[0].shape[0] < 1:
        raise ValueError(f"Expected at least one sample in {what}; received 0")
    return out


def canonical_labels(model, labels, n: int) -> list[np.ndarray]:
    """Labels in head order, each (N, C) float64, for every head."""
    heads = output_names(model)
    missing = [h for h in heads if h not in labels]
    if missing:
        raise ValueError(f"Expected labels for every head {list(heads)}; "
                         f"received none for {missing}")
    out = []
    for head in heads:
        y = np.asarray(labels[head], dtype=np.float64)
        if y.shape[0] != n:
            raise ValueError(f"Expected {n} labels for head {head!r}; received {y.shape[0]}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"Expected finite labels for head {head!r}; received NaN or inf")
        out.append(y.reshape(n, -1))
    return out


def load_model(path, *, unsafe: bool = False):
    """Loads a .keras file without running code from it unless `unsafe`.

    Raises:
        ValueError: the file is missing, not a Keras archive, or not a functional model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected a .keras model file; received {str(path)!r}, "
                         "which does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"Expected a .keras model file (a zip archive); received "
                         f"{str(path)!r}, which is not one")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as err:  # Keras raises many types for bad archives
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "safe_mode" in str(err) or "lambda" in str(err).lower():
            message = ("the file carries code (a Lambda layer); pass --unsafe to run it, "
                       "only for files you trust")
        raise ValueError(f"Expected a loadable Keras model in {str(path)!r}; "
                         f"received an error: {message}") from None
    if not hasattr(model, "_inbound_nodes") or type(model).__name__ != "Functional":
        raise ValueError(f"Expected a functional Keras model; received a "
                         f"{type(model).__name__} from {str(path)!r} (Sequential and "
                         "subclassed models are not supported)")
    return model


def load_npz(path, model) -> tuple[dict, dict | None, list[str]]:
    """Inputs, labels and ignored keys from an .npz file (never unpickles).

    Keys are the model's input names, or arr_0, arr_1... in model input order; arrays named
    like a head are labels (used only if every head has one).

    Returns:
        ({input name: array}, {head name: array} or None, [ignored keys]).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected an .npz data file; received {str(path)!r}, "
                         "which does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        raise ValueError(f"Expected plain numeric arrays in {str(path)!r}; received "
                         f"{'object arrays (not loaded: they would need unpickling)' if 'pickle' in str(err) else err}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"Expected an .npz data file at {str(path)!r}; received "
                         f"{type(err).__name__}: {err}") from None
    names, heads = input_names(model), output_names(model)
    inputs = {}
    for i, name in enumerate(names):
        if name in arrays:
            inputs[name] = arrays[name]
        elif f"arr_{i}" in arrays:
            inputs[name] = arrays[f"arr_{i}"]
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ValueError(f"Expected arrays for inputs {missing} in {str(path)!r} (keyed by "
                         f"input name or arr_0..); received keys {sorted(arrays)}")
    used = set(names) | {f"arr_{i}" for i in range(len(names))}
    label_keys = [h for h in heads if h in arrays]
    labels = {h: arrays[h] for h in label_keys} if len(label_keys) == len(heads) else None
    ignored = sorted(k for k in arrays if k not in used and (labels is None or k not in labels))
    return inputs, labels, ignored
