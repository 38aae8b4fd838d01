"""What a result was computed from, as hashes: a saved result is reused only when they match.

A fingerprint covers the model (its architecture and every weight, bit for bit), the data (every
input array and label, or a lazy input's codes), the probe and its parameters (seed included)
and the sample ids. Changing any of them (one head's kernel set to zero, one data value) changes
the fingerprint, so a stale result is recomputed instead of shown.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def _array_bytes(x) -> tuple[str, bytes]:
    """(description, bytes) of an array, or of a lazy input's codes (never materialised)."""
    codes = getattr(x, "codes", None)
    if codes is not None:
        codes = np.ascontiguousarray(codes)
        return f"lazy {type(x).__name__} {getattr(x, 'features', '')} {codes.dtype} " \
               f"{codes.shape}", codes.tobytes()
    x = np.ascontiguousarray(np.asarray(x))
    return f"{x.dtype} {x.shape}", x.tobytes()


def model_fingerprint(model) -> str:
    """sha256 of the model's architecture (its config) and every weight's dtype, shape and
    bytes, in `model.weights` order."""
    config = json.dumps(model.get_config(), sort_keys=True, default=repr)
    parts = [config]
    for w in model.weights:
        desc, data = _array_bytes(np.asarray(w))
        parts += [w.path if hasattr(w, "path") else w.name, desc, data]
    return _digest(*parts)


def data_fingerprint(inputs, labels=None) -> str:
    """sha256 of every input (by name, in name order) and every label array."""
    parts = []
    for group in (inputs, labels or {}):
        items = sorted(group.items()) if isinstance(group, dict) else enumerate(group)
        for name, x in items:
            desc, data = _array_bytes(x)
            parts += [name, desc, data]
    return _digest(*parts)


def fingerprint(model, inputs, probe: str, params: dict, *, labels=None,
                sample_ids=None) -> dict:
    """{"model", "data", "probe", "samples", "key"}: hex digests, "key" covering all four.

    Args:
        probe: the registered probe name ("ablation/shuffle").
        params: its parameters, seed included (JSON-serialisable, or their repr is used).
        sample_ids: the rows of the data set that were probed (None: all).
    """
    return combine(model_fingerprint(model), data_fingerprint(inputs, labels), probe, params,
                   sample_ids=sample_ids)


def combine(model_digest: str, data_digest: str, probe: str, params: dict, *,
            sample_ids=None) -> dict:
    """The fingerprint from the model's and the data's digests (computed once for many
    probes of one model and data), the probe, its parameters and the sample ids."""
    return with_samples({"model": model_digest, "data": data_digest,
                         "probe": _digest(probe, json.dumps(params, sort_keys=True,
                                                            default=repr))}, sample_ids)


def with_samples(fp: dict, sample_ids=None) -> dict:
    """`fp` for other samples (None: all of them, as an unsharded run): its "samples" digest
    and its key recomputed."""
    out = dict(fp, samples=_digest(*([] if sample_ids is None else
                                     [_array_bytes(np.asarray(sample_ids))[1]])))
    out["key"] = _digest(out["model"], out["data"], out["probe"], out["samples"])
    return out
