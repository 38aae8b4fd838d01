"""A folder of saved results that cannot go stale.

Every result is saved with the fingerprint of what it was computed from
(probes.results.fingerprint). `cached` reuses a saved result only when its fingerprint matches the
one asked for; otherwise it recomputes it and replaces the files. The folder's manifest.json lists
every result with its fingerprint, the versions it was computed with and when.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from probes.results import atomic, resultio

MANIFEST = "manifest.json"


def versions() -> dict:
    """Versions of what computes results (read from the installed packages, no imports)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("mtl-probe", "tensorflow", "keras", "numpy", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def saved_fingerprint(json_path) -> dict | None:
    """The fingerprint saved with a result, or None when there is no such file (a malformed
    file is a ValueError: never silently replaced by a recomputation that hides it)."""
    json_path = Path(json_path)
    if not json_path.is_file():
        return None
    return resultio.read_meta(json_path).get("fingerprint")


def cached(directory, stem: str, fingerprint: dict, compute, report=lambda line: None):
    """The result saved as `directory/stem` if it was computed from `fingerprint`, else
    `compute()`, saved there (replacing a stale one) and recorded in the manifest.

    Returns:
        (result, reused: bool).
    """
    directory = Path(directory)
    path = directory / f"{stem}.json"
    old = saved_fingerprint(path)
    if old is not None and old.get("key") == fingerprint["key"]:
        return resultio.load(path), True
    if old is not None:
        changed = [k for k in ("model", "data", "probe", "samples")
                   if old.get(k) != fingerprint.get(k)]
        report(f"{stem}: saved result is stale ({', '.join(changed) or 'fingerprint'} "
               "changed); recomputing")
    result = compute()
    resultio.save(result, directory, stem, fingerprint=fingerprint)
    record(directory, stem, result, fingerprint)
    return result, False


def record(directory, stem: str, result, fingerprint: dict | None) -> Path:
    """Adds (or replaces) `stem` in the folder's manifest."""
    directory = Path(directory)
    path = directory / MANIFEST
    manifest = {"versions": versions(), "results": {}}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"Expected a readable manifest at {path}; received {err}") from None
    manifest["versions"] = versions()
    manifest.setdefault("results", {})[stem] = {
        "kind": result.KIND, "fingerprint": fingerprint,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return atomic.write_json(path, manifest)
