"""Importing TensorFlow (when it is Keras' backend) without its start-up banner on stderr.

TensorFlow 2.21 writes absl lines ("All log messages before absl::InitializeLog()...",
oneDNN and CUDA notices) from C++ before any Python logging setting applies, and no
environment variable silences them. The command line imports it here with file descriptor 2
pointed at /dev/null for the duration of the import and first op, then restores it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys


class _NoRetracingNotice(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning: the probes trace one
    function per model, chunk shape and purpose on purpose (a sanity check traces one per
    randomised copy of the model), and the notice would bury the command's own progress."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def import_tensorflow(before_start=None):
    """Imports keras and tensorflow quietly (once); returns the tensorflow module, or None when
    TensorFlow is not Keras' backend (probes.engine.backends; the probes then never use it).

    `before_start` is called after the first import and before the first op starts
    TensorFlow's devices (what must precede it: splitting the CPU into logical devices).
    """
    if "tensorflow" in sys.modules:
        import keras

        return sys.modules["tensorflow"] if keras.config.backend() == "tensorflow" else None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        if keras.config.backend() != "tensorflow":
            # Keras still imports TensorFlow, when installed, to serialise a model's config
            # (the fingerprint's): import it here, quietly, but run nothing on it.
            if importlib.util.find_spec("tensorflow") is not None:
                import tensorflow  # noqa: F401
            return None
        import tensorflow as tf

        if before_start is not None:
            before_start()
        tf.constant(0.0) + 1.0  # the second banner comes with the first op
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().addFilter(_NoRetracingNotice())
    return tf
