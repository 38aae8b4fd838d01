"""Atomic file and directory writes: a reader sees the old file, the new one, or none.

Imports nothing heavy (numpy only when writing arrays), so `reports/` and `mtl_models/` can use
it without pulling in TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)  # reading the mask sets it: put it back at once (at import, one thread)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_bytes(path, data: bytes) -> Path:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a written file gets what open() would give
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_json(path, obj) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def write_npz(path, **arrays) -> Path:
    buf = io.BytesIO()
    import numpy as np  # numpy is light, but only this function needs it

    np.savez_compressed(buf, **arrays)
    return write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def staging_dir(final):
    """Yields an empty directory beside `final`; renames it to `final` if the block succeeds
    and deletes it otherwise (Ctrl-C included), so `final` is never half-written.

    An existing `final` is replaced only after the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.{os.getpid()}.old")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
