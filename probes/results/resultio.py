"""One file format for every probe's result: a JSON document plus an .npz of its arrays.

Every result type is a frozen dataclass registered here under a kind ("probe", "agreement",
"coupling", "decomposition", "interaction", "structure"). `save` writes `<stem>.npz` (every
array field, exactly) then `<stem>.json` (schema, kind, fingerprint and every other field), each
atomically; `load` rebuilds the same object, bit for bit: arrays come back from the .npz and
Python floats round-trip exactly through JSON. Tuples, frozensets and nested dataclasses are
tagged in the JSON so they come back as they were. Nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np

from probes.results import atomic

SCHEMA = 2
KINDS: dict[str, type] = {}
# Where each kind is defined: loading a result imports its module (which registers it).
MODULES = {"probe": "probes.results.result", "structure": "probes.model.graph",
           "callsite": "probes.model.graph", "agreement": "probes.methods.taskgrads",
           "coupling": "probes.methods.coupling",
           "decomposition": "probes.methods.paths.decomposition",
           "headsplit": "probes.methods.paths.decomposition",
           "interaction": "probes.methods.paths.interaction",
           "faithfulness": "probes.checks.faithfulness", "sanity": "probes.checks.sanity"}
# probe sharing's sweep keeps its own one-file format (sharing.json), read by its module's load.
SHARING_MODULE = "probes.results.transfer"


def kind_class(kind: str) -> type:
    """The registered type of `kind`, importing its module first if needed."""
    if kind not in KINDS and kind in MODULES:
        importlib.import_module(MODULES[kind])
    if kind not in KINDS:
        raise ValueError(f"Expected a result kind in {sorted(MODULES)}; received {kind!r}")
    return KINDS[kind]


def register(kind: str):
    """Class decorator: `cls` is saved and loaded as `kind`."""
    def add(cls):
        KINDS[kind] = cls
        cls.KIND = kind
        return cls
    return add


def _encode(value, arrays: dict, path: str):
    if isinstance(value, np.ndarray):
        key = path or "root"
        arrays[key] = value
        return {"__array__": key}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = getattr(type(value), "KIND", None)
        if kind is None:
            raise TypeError(f"unregistered result type {type(value).__name__}")
        return {"__type__": kind, "fields": {
            f.name: _encode(getattr(value, f.name), arrays, f"{path}.{f.name}".lstrip("."))
            for f in dataclasses.fields(value) if f.init}}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{path}.{k}") for k, v in enumerate(value)]}
    if isinstance(value, frozenset):
        return {"__frozenset__": [_encode(v, arrays, f"{path}.{k}")
                                  for k, v in enumerate(sorted(value, key=repr))]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{path}.{k}") for k, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"dict keys must be strings at {path!r}")
        return {"__dict__": {k: _encode(v, arrays, f"{path}.{k}") for k, v in value.items()}}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save a {type(value).__name__} at {path!r}")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__frozenset__" in value:
        return frozenset(_decode(v, arrays) for v in value["__frozenset__"])
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    if "__type__" in value:
        cls = kind_class(value["__type__"])
        return cls(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    raise ValueError(f"untagged object {sorted(value)[:3]}")


def save(result, directory, stem: str | None = None, *, fingerprint: dict | None = None,
         summary: dict | None = None) -> Path:
    """Writes `<stem>.npz` then `<stem>.json` in `directory` (created), each atomically.

    Args:
        stem: file name without suffix [default: the result's `name`, else its kind].
        fingerprint: what the result was computed from (see probes.results.fingerprint).
        summary: a JSON-ready summary to keep beside it for readers of the JSON alone.
    Returns:
        The JSON path (the JSON names its .npz, so a reader opens the JSON first).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or getattr(result, "name", None) or result.KIND
    arrays: dict = {}
    document = _encode(result, arrays, "")
    atomic.write_npz(directory / f"{stem}.npz", **arrays)
    meta = {"schema": SCHEMA, "kind": result.KIND, "arrays": f"{stem}.npz",
            "fingerprint": fingerprint, "result": document}
    if summary is not None:
        meta["summary"] = summary
    return atomic.write_json(directory / f"{stem}.json", meta)


def read_meta(json_path) -> dict:
    """The JSON document of a saved result; ValueError if missing, malformed or of another
    schema."""
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"Expected a saved result at {json_path}; received "
                         f"{type(err).__name__}: {err}") from None
    if (not isinstance(meta, dict) or meta.get("schema") != SCHEMA
            or meta.get("kind") not in MODULES):
        got = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"Expected a saved result of schema {SCHEMA} at {json_path}; "
                         f"received schema {got!r}")
    return meta


def load(json_path, kind: str | None = None):
    """The result saved at `json_path` (a missing or malformed file raises ValueError); a
    `probe sharing` sweep's sharing.json too (one JSON file of its own format)."""
    json_path = Path(json_path)
    if kind in (None, "sharing") and _kind_of(json_path) == "sharing":  # its own format
        return importlib.import_module(SHARING_MODULE).load(json_path)
    meta = read_meta(json_path)
    if kind is not None and meta["kind"] != kind:
        raise ValueError(f"Expected a saved {kind} result at {json_path}; received a "
                         f"{meta['kind']} result")
    try:
        with np.load(json_path.parent / meta["arrays"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return _decode(meta["result"], arrays)
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Expected a probe result at {json_path}; "
                         f"received {type(err).__name__}: {err}") from None


def _kind_of(json_path: Path) -> str | None:
    """The "kind" a JSON file names, or None if it cannot be read as one."""
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("kind") if isinstance(doc, dict) else None
