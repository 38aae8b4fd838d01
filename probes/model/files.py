"""Users' model and data files: loading without running code unless asked, one-line errors.

Everything here raises ValueError("Expected ...; received ...") naming the file, input or head.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import importlib.util
import re
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np

from probes.model.graph import (
    functional,
    head_aliases,
    input_names,
    is_subclassed,
    output_names,
)


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


# Models loaded by `loaded_model`, newest last: (digest, options) -> model.
_LOADED: collections.OrderedDict = collections.OrderedDict()
_LOADED_LOCK = threading.Lock()
LOADED_KEPT = 4


def loaded_model(path, *, unsafe: bool = False, custom_modules=()):
    """`load_model`, once per file content and options in this process (the last
    LOADED_KEPT kept): a model object keeps its traced functions (probes.engine.forward.cached), so
    a second probe of the same file in one process (a notebook, a test session, `probe
    report` after `probe ablate` in Python) skips loading and tracing. Only for the probes,
    which never change a model; `load_model` gives the caller a model of their own."""
    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return load_model(path, unsafe=unsafe, custom_modules=custom_modules)  # its error
    modules = tuple((str(m), hashlib.sha256(Path(m).read_bytes()).hexdigest()
                     if str(m).endswith(".py") and Path(m).is_file() else None)
                    for m in custom_modules)  # a module file edited in between: loaded again
    key = (digest, bool(unsafe), modules)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    model = load_model(path, unsafe=unsafe, custom_modules=custom_modules)
    with _LOADED_LOCK:
        _LOADED[key] = model
        while len(_LOADED) > LOADED_KEPT:
            _LOADED.popitem(last=False)
    return model


def load_model(path, *, unsafe: bool = False, custom_modules=()):
    """Loads a .keras file without running code from it unless `unsafe`.

    Args:
        custom_modules: modules (or .py files) defining the model's custom layers.
    Raises:
        ValueError: the file is missing, not a Keras archive, or needs code or classes it
        was not given. A Sequential comes back as a functional view of its layers
        (probes.model.graph.functional); a subclassed model as it is (its view needs data).
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
    if is_subclassed(model):
        return model  # probes.model.graph.called_view, once the data is known
    try:
        return functional(model)  # a Sequential as a functional view of the same layers
    except ValueError as err:
        raise ValueError(f"{err} from {str(path)!r}") from None


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
    the arrays used are read. With `model` None (a subclassed model, whose inputs the data
    names), every array is an input, in the file's order.

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
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 (zipfile, zlib, OSError...: a damaged file)
        raise ValueError(f"Expected a readable .npz data file at {str(path)!r}; received a "
                         f"damaged one ({type(err).__name__}: {err})") from None
    with z:
        keys = list(z.files)
        if model is None:
            return {k: _member(z, k, f"input {k!r}", path) for k in keys}, None, []
        names, heads = input_names(model), output_names(model)
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
