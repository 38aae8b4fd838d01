"""Guards around what a command writes: the directory must take files before the work starts,
and Ctrl-C waits until a pair of result files is complete."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path

import click


def writable_dir(path, what: str) -> Path:
    """`path` as a directory we can write files into (created if missing), or the command
    ends with one line naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise click.ClickException(f"Expected a writable {what} directory; received "
                                   f"{str(path)!r}: {err.strerror or err}") from None
    return path


@contextlib.contextmanager
def deferred_interrupt():
    """Holds Ctrl-C until the block is done (then raises it): a result's .npz and .json are
    written as a pair, never one without the other."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
