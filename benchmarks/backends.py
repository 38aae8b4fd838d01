"""Integrated gradients' generic (dense) path under each Keras backend, on the question's model.

    KERAS_BACKEND=tensorflow python benchmarks/backends.py [--samples 16] [--steps 32]
    KERAS_BACKEND=jax python benchmarks/backends.py
    KERAS_BACKEND=torch python benchmarks/backends.py

The `concat` variant at full size (T 280, F 256, one shared LSTM of 64 units) with its seed-0
initial weights, on random one-hot tweets; the one-hot fast path is turned off (it is
TensorFlow-only), so every backend runs the same algorithm (probes.engine.gradients). Prints
the first call (tracing and compiling included) and the median of the next ones, in seconds
and in samples per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import keras

    from mtl_models.variants import INPUTS, build_model
    from probes.methods.attribution import attribute

    model = build_model("concat", seed=0)
    rng = np.random.default_rng(0)
    t, f = model.inputs[0].shape[1:]
    data = {name: np.eye(f, dtype="float32")[rng.integers(0, f, size=(args.samples, t))]
            for name in INPUTS}
    times = []
    for _ in range(1 + args.repeats):
        started = time.perf_counter()
        attribute(model, data, rng=np.random.default_rng(0), method="integrated_gradients",
                  steps=args.steps, one_hot_path=False)
        times.append(time.perf_counter() - started)
    warm = statistics.median(times[1:])
    print(f"{keras.config.backend()}: {args.samples} samples x {args.steps} steps: first call "
          f"{times[0]:.1f} s, then {warm:.2f} s ({args.samples / warm:.1f} samples/s)")


if __name__ == "__main__":
    main()
