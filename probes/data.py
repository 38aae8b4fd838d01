"""Models and data at the edge: loading, names, shapes, dtypes, finiteness.

Everything here raises ValueError("Expected ...; received ...") naming the file, input or head.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from probes.graph import head_aliases, input_names, output_names, token_sites
from probes.lazy import is_lazy

__all__ = ["canonical_inputs", "canonical_labels", "custom_objects", "input_names",
           "load_model", "load_npz", "output_names"]

INT32 = np.iinfo(np.int32)


def _expected_shape(tensor) -> tuple:
    return tuple(tensor.shape)[1:]


def canonical_inputs(model, inputs, what: str = "inputs") -> list:
    """Arrays in model order, checked against the model's input shapes and dtypes.

    Args:
        inputs: {input name: array} or a sequence of arrays in model order. A lazy
            input (probes.lazy) is checked by shape and dtype only and returned as it is
            (never materialized).
    Returns:
        Per input, (N, ...) float32 arrays, int32 for token inputs (integer model inputs, and
        inputs of any dtype that only feed Embeddings: see probes.graph.token_sites), or
        lazy inputs.
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
            the head's output units; a head may be named by its dict key or its layer.
    """
    heads = output_names(model)
    labels = {head_aliases(model).get(k, k): v for k, v in labels.items()}
    missing = [h for h in heads if h not in labels]
    if missing:
        raise ValueError(f"Expected labels for every head {list(heads)}; "
                         f"received none for {missing}")
    out = []
    for head, tensor in zip(heads, model.outputs):  # heads are in model.outputs order
        y = np.asarray(labels[head])
        units = tuple(tensor.shape)[1:]
        width = math.prod(units) if None not in units else None
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


def custom_objects(modules) -> dict:
    """Imports each module (a dotted name, or a path to a .py file) and returns the classes
    and functions it defines, by name, for Keras to deserialize custom layers with.

    Importing runs the module's code: only what the user names with --custom-module.
    """
    found = {}
    for spec in modules:
        spec = str(spec)
        try:
            if spec.endswith(".py"):
                path = Path(spec)
                if not path.is_file():
                    raise FileNotFoundError("no such file")
                name = f"_mtl_probe_custom_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
                loader = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(loader)
                sys.modules[name] = module
                loader.loader.exec_module(module)
            else:
                module = importlib.import_module(spec)
        except Exception as err:  # noqa: BLE001 (the user's code may raise anything)
            raise ValueError(f"Expected an importable module or .py file for "
                             f"--custom-module; received {spec!r} ({type(err).__name__}: "
                             f"{err})") from None
        found.update({k: v for k, v in vars(module).items()
                      if callable(v) and getattr(v, "__module__", None) == module.__name__})
    return found


def load_model(path, *, unsafe: bool = False, custom_modules=()):
    """Loads a .keras file without running code from it unless `unsafe`.

    Args:
        custom_modules: modules (or .py files) defining the model's custom layers.
    Raises:
        ValueError: the file is missing, not a Keras archive, needs code or classes it was not
        given, or is not a functional model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected a .keras model file; received {str(path)!r}, "
                         "which does not exist")
    if not _is_zip(path):
        raise ValueError(f"Expected a .keras model file (a zip archive); received "
                         f"{str(path)!r}, which is not one (another format, or truncated)")
    objects = custom_objects(custom_modules)
    import keras

    try:
        model = keras.saving.load_model(path, custom_objects=objects, compile=False,
                                        safe_mode=not unsafe)
    except Exception as err:  # noqa: BLE001 (Keras raises many types for bad archives)
        raise ValueError(f"Expected a loadable Keras model in {str(path)!r}; received "
                         f"{_load_error(err)}") from None
    kind = type(model).__name__
    if kind == "Sequential" or not any(c.__name__ == "Functional" for c in type(model).__mro__):
        hint = ("rebuild it as keras.Model(model.inputs, model.outputs)" if kind == "Sequential"
                else "subclassed models have no graph to follow; build it with the functional "
                     "API")
        raise ValueError(f"Expected a functional Keras model (keras.Model(inputs, outputs), "
                         f"any number of inputs and outputs); received a {kind} from "
                         f"{str(path)!r} ({hint})")
    return model


def _load_error(err: Exception) -> str:
    """One line saying why Keras could not load a file, and what to pass if that helps."""
    text = str(err)
    missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if missing:
        return (f"the custom class {missing.group(1)!r}, which is not loaded; pass "
                "--custom-module MODULE (a module name or .py file that defines it)")
    if "safe_mode" in text or "lambda" in text.lower():
        return ("a file that carries code (a Lambda layer), refused in safe mode; pass "
                "--unsafe to run it, only for files you trust")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no message'}"


def _is_zip(path: Path) -> bool:
    """A zip archive from its first bytes (as numpy and Keras read it) to its end (its central
    directory: a truncated archive has none)."""
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(path)


def load_npz(path, model) -> tuple[dict, dict | None, list[str]]:
    """Inputs, labels and ignored keys from an .npz file (never unpickles).

    Keys are the model's input names, or arr_0, arr_1... in model input order (a name wins over
    its arr_i); arrays named like a head are labels (used only if every head has one). Only
    the arrays used are read.

    Returns:
        ({input name: array}, {head name: array} or None, [ignored keys]).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected an .npz data file; received {str(path)!r}, "
                         "which does not exist")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"Expected an .npz data file (numpy.savez, one array per input); "
                         f"received a single .npy array in {str(path)!r}")
    if not _is_zip(path):
        raise ValueError(f"Expected an .npz data file (a zip archive of arrays); received "
                         f"{str(path)!r}, which is not one (another format, or truncated)")
    names, heads = input_names(model), output_names(model)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 (zipfile, zlib, OSError...: a damaged file)
        raise ValueError(f"Expected a readable .npz data file at {str(path)!r}; received a "
                         f"damaged one ({type(err).__name__}: {err})") from None
    with z:
        keys = list(z.files)
        chosen = {}
        for i, name in enumerate(names):
            found = [k for k in (name, f"arr_{i}") if k in keys]  # the name wins
            if found:
                chosen[name] = found[0]
        missing = [n for n in names if n not in chosen]
        if missing:
            raise ValueError(f"Expected arrays for inputs {missing} in {str(path)!r} (keyed "
                             f"by input name or arr_0..); received keys {sorted(keys)}")
        inputs = {n: _member(z, k, f"input {n!r}", path) for n, k in chosen.items()}
        aliases = head_aliases(model)
        label_keys = {aliases[k]: k for k in keys
                      if k in aliases and k not in chosen.values()}  # head -> key
        labels = ({h: _member(z, k, f"labels of head {h!r}", path)
                   for h, k in label_keys.items()}
                  if len(label_keys) == len(heads) else None)
    used = set(chosen.values()) | (set(label_keys.values()) if labels else set())
    return inputs, labels, sorted(k for k in keys if k not in used)


def _member(z, key, what, path) -> np.ndarray:
    """One array of an open .npz; never unpickles, and a damaged member is a ValueError."""
    try:
        value = z[key]
    except Exception as err:  # noqa: BLE001 (pickle, shape, CRC, zlib: a damaged member)
        if "pickle" in str(err):
            raise ValueError(f"Expected plain numeric arrays in {str(path)!r}; received an "
                             f"object array for {what} (not loaded: it would need "
                             "unpickling)") from None
        raise ValueError(f"Expected a readable array for {what} in {str(path)!r}; received "
                         f"{type(err).__name__}: {err}") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError, house style)
            f"Expected a .npy array for {what} in {str(path)!r}; received a member of "
            f"another kind ({type(value).__name__})")
    return value
