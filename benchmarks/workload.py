"""The benchmark's workload: sizes, the model and data files, and the FLOP count.

The model is the question's `concat` variant (two inputs through one shared LSTM, two sigmoid
heads): the cached trained run of `probe train --variant concat` when it is present (its first
held-out pairs), else the same architecture with the fixed-seed initial weights and freshly
generated synthetic tweets. Either way the files are written to a temporary directory, so the
toolkit and the baselines read exactly the same bytes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Everything that sets the amount of work.

    Attributes:
        seq_len, features, units: the model's T, F and LSTM width U.
        samples: samples probed by every timed probe (N).
        data_samples: samples written to the data file (the scaling sweep's largest N).
        steps: integrated gradients' path steps.
        noise_samples: smoothgrad's noisy copies (the toolkit's default).
        permutations: shuffle/noise draws per input (the toolkit's default).
        windows: occlusion windows per input (the toolkit's default length / 14).
        batch_size: rows per pass, the toolkit's default `--batch-size`.
        quad_samples, quad_steps: the quadrature comparison's samples and step counts.
        scale_*: the scaling sweep's points and its fixed settings.
    """

    seq_len: int = 280
    features: int = 256
    units: int = 64
    samples: int = 64
    data_samples: int = 256
    steps: int = 32
    noise_samples: int = 16
    permutations: int = 8
    windows: int = 14
    batch_size: int = 256
    quad_samples: int = 16
    quad_steps: tuple = (8, 16, 32, 64, 128)
    scale_samples: tuple = (32, 64, 128, 256)
    scale_seq_len: tuple = (35, 70, 140, 280)
    scale_heads: tuple = (1, 2, 4, 8)
    scale_inputs: tuple = (1, 2, 3, 4)
    scale_n: int = 64  # samples at every point of the other sweeps
    scale_steps: int = 8  # integrated gradients' steps in the sweeps
    scale_permutations: int = 2  # shuffle draws in the sweeps
    repeats: int = 1  # runs per process timing (fastest kept) and per scaling point (median)
    warmup: bool = True  # one untimed call on one pass of samples before each scaling point


FULL = Sizes()
QUICK = Sizes(seq_len=20, features=16, units=8, samples=24, data_samples=32, steps=8,
              quad_samples=8, quad_steps=(4, 8), scale_samples=(8, 16, 32),
              scale_seq_len=(5, 10, 20), scale_heads=(1, 2, 4), scale_inputs=(1, 2, 3),
              scale_n=16, scale_steps=4, scale_permutations=2, repeats=1, warmup=False)


def lstm_forward_flops(seq_len: int, features: int, units: int) -> float:
    """FLOPs of one LSTM call on one row: T steps of the four gates' two matmuls,
    2 * T * 4U(F + U) (a multiply-add is 2 FLOPs); the elementwise gate math (~10 T U) and
    the Dense heads (2 * 2U per head) are left out: under 1% at full size."""
    return 2.0 * seq_len * 4 * units * (features + units)


def forward_row_flops(sizes: Sizes, inputs: int = 2) -> float:
    """FLOPs of one forward-only row: the shared LSTM once per input."""
    return inputs * lstm_forward_flops(sizes.seq_len, sizes.features, sizes.units)


def gradient_row_flops(sizes: Sizes, inputs: int = 2, heads: int = 2) -> float:
    """FLOPs of one forward + backward row of a gradient probe: one forward through the
    shared LSTM per input, and per head one backward to the inputs, which runs the same
    matmuls transposed (d x = d gates W^T, d h = d gates U^T): (1 + heads) x forward. Weight
    gradients are not needed and not counted."""
    return (1 + heads) * inputs * lstm_forward_flops(sizes.seq_len, sizes.features, sizes.units)


def gradient_rows(method: str, sizes: Sizes) -> tuple[int, int]:
    """(forward + backward rows, forward-only rows) that a gradient probe needs at least."""
    n = sizes.samples
    if method == "integrated_gradients":
        return n * sizes.steps, 2 * n  # the path, and f(x), f(x') for completeness
    if method == "smoothgrad":
        return n * sizes.noise_samples, 0
    return n, 0  # saliency, input_x_gradient


def load_workload(sizes: Sizes, cache_dir=None):
    """The concat model and `sizes.data_samples` one-hot pairs.

    Returns:
        (model, {"tweet_a": (N, T, F), "tweet_b": (N, T, F)} float32, source) where source is
        "cached trained run <dir>" or "initial weights (seed 0), generated tweets".
    """
    from mtl_models import runs
    from mtl_models.tweets import TweetSpec, generate
    from probes import one_hot

    config = runs.TrainConfig(variant="concat", seq_len=sizes.seq_len, features=sizes.features,
                              units=sizes.units, min_len=min(40, sizes.seq_len))
    run_dir = runs.run_dir_for(config, cache_dir)
    if runs.is_complete(run_dir):
        run = runs.load_run(run_dir)
        tweets, _ = run.heldout()
        model, source = run.model(), f"cached trained run {run_dir}"
    else:
        from mtl_models.variants import build_model

        spec = TweetSpec(seq_len=sizes.seq_len, features=sizes.features,
                         min_len=min(40, sizes.seq_len))
        tweets = generate(spec, sizes.data_samples, np.random.default_rng(0))
        model = build_model("concat", seq_len=sizes.seq_len, features=sizes.features,
                            units=sizes.units, seed=0)
        source = "initial weights (seed 0), generated tweets"
    n = min(sizes.data_samples, len(tweets))
    inputs = {"tweet_a": one_hot(tweets.codes_a[:n], sizes.features),
              "tweet_b": one_hot(tweets.codes_b[:n], sizes.features)}
    return model, inputs, source


def write_files(model, inputs: dict, samples: int, folder: Path) -> tuple[str, str]:
    """Writes model.keras and data.npz (the first `samples` rows of every input, keyed by
    input name) into `folder`; returns their paths."""
    folder = Path(folder)
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", **{k: v[:samples] for k, v in inputs.items()})
    return str(folder / "model.keras"), str(folder / "data.npz")
