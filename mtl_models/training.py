"""Training a variant on synthetic tweets.

Tweets are kept as int16 codes and one-hot encoded per batch inside the tf.data pipeline: a full
size float one-hot of a few thousand pairs would take gigabytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mtl_models.tweets import INPUTS_OF_SET, TweetSet, TweetSpec
from mtl_models.variants import HEADS


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What a training run produced besides the weights (restored to the best epoch).

    Attributes:
        history: metric name -> per-epoch values (Keras names: "loss", "val_head_1_accuracy"...).
        best_epoch: 0-based epoch whose weights the model holds.
        seconds: wall time of the fit.
    """

    history: dict
    best_epoch: int
    seconds: float


@contextlib.contextmanager
def _global_seed_unset():
    """TensorFlow's global random seed unset inside the block, restored after it."""
    from tensorflow.python.eager import context  # the global seed's only reader

    seed = context.global_seed()
    if seed is None:
        yield
        return
    tf.random.set_seed(None)
    try:
        yield
    finally:
        tf.random.set_seed(seed)


def dataset(tweets: TweetSet, labels: dict[str, np.ndarray], features: int, batch_size: int,
            shuffle_seed: int | None = None, weights: dict[str, np.ndarray] | None = None,
            repeat: bool = False) -> tf.data.Dataset:
    """Batches of ({"tweet_a", "tweet_b": (B, T, F) float32}, ((B, 1) float32 per head)), with
    per-head sample weights ((B,) per head) when `weights` is given, or of inputs alone when
    `labels` is empty. Labels and weights are tuples in HEADS order (Keras 3 refuses sample
    weights keyed by output name). `repeat` cycles the data without end (then fit needs
    steps_per_epoch)."""
    codes = {name: getattr(tweets, field) for name, field in INPUTS_OF_SET.items()}

    def encode(x):
        # tf.one_hot maps the PAD code -1 to an all-zero row.
        return {k: tf.one_hot(tf.cast(v, tf.int32), features) for k, v in x.items()}

    if labels:
        ys = tuple(np.asarray(labels[head], np.float32)[:, None] for head in HEADS)
        if weights is None:
            ds = tf.data.Dataset.from_tensor_slices((codes, ys))
        else:
            ws = tuple(np.asarray(weights[head], np.float32) for head in HEADS)
            ds = tf.data.Dataset.from_tensor_slices((codes, ys, ws))
    else:
        ds = tf.data.Dataset.from_tensor_slices(codes)
    if shuffle_seed is not None:
        # An op-level seed makes the order reproducible, but TensorFlow mixes its global seed
        # into it when one is set: unset for the shuffle's creation (and put back), so a run's
        # weights never depend on what the process seeded before (tf.random.set_seed,
        # keras.utils.set_random_seed).
        with _global_seed_unset():
            ds = ds.shuffle(len(tweets), seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    if labels:
        ds = ds.map(lambda x, *rest: (encode(x), *rest))
    else:
        ds = ds.map(encode)
    # No autotuning: releasing an iterator waits for tf.data's autotuning thread to wake,
    # which stalled training for 4-5 s at most epochs and at the end of fit (2 CPU cores).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(1).with_options(options)


class _BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation loss and restores them at the
    end (EarlyStopping restores only when it stops early)."""

    def __init__(self, patience: int):
        super().__init__()
        self.patience = patience
        self.best_loss, self.best_epoch, self.best_weights = np.inf, -1, None

    def on_epoch_end(self, epoch, logs=None):
        loss = logs["val_loss"]
        if np.isfinite(loss) and loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_weights = self.model.get_weights()
        elif epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class _Progress(keras.callbacks.Callback):
    def __init__(self, report: Callable[[str], None], epochs: int):
        super().__init__()
        self.report, self.epochs, self.start = report, epochs, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        accs = " ".join(f"{h} {logs.get(f'val_{h}_accuracy', float('nan')):.3f}" for h in HEADS)
        self.report(f"epoch {epoch + 1}/{self.epochs}  loss {logs['loss']:.4f}  "
                    f"val_loss {logs['val_loss']:.4f}  val acc {accs}  "
                    f"[{time.perf_counter() - self.start:.0f}s]")


def fit(model: keras.Model, train: TweetSet, val: TweetSet, spec: TweetSpec,
        tasks: tuple[str, str], *, epochs: int, batch_size: int, patience: int, seed: int,
        report: Callable[[str], None] = lambda line: None,
        callbacks: list | None = None, labelled: tuple[int | None, int | None] | None = None,
        steps_per_epoch: int | None = None) -> FitResult:
    """Trains `model` in place and restores the weights of the best validation epoch.

    Args:
        model: a compiled model with inputs tweet_a, tweet_b and outputs head_1, head_2.
        train, val: tweet pairs; labels come from `tasks` (task of head_1, task of head_2).
        spec: the world the tweets come from (feature width, group).
        epochs, batch_size, patience: the usual; patience counts epochs without improvement.
        seed: seed of the shuffling order.
        report: called with one line per epoch.
        callbacks: more Keras callbacks (e.g. a gradient monitor).
        labelled: per head, how many training pairs (the first ones) have a label its loss
            sees; None = all. The other pairs still train the head's inputs through the other
            head's loss.
        steps_per_epoch: optimizer steps between validations, cycling the training data;
            None = one pass over it.
    """
    def labels(tweets):
        return {head: tweets.labels(task, spec) for head, task in zip(HEADS, tasks)}

    weights = None
    if labelled is not None and any(n is not None for n in labelled):
        rows = np.arange(len(train))
        weights = {head: (rows < (len(train) if n is None else n)).astype(np.float32)
                   for head, n in zip(HEADS, labelled)}
    best = _BestEpoch(patience)
    start = time.perf_counter()
    history = model.fit(
        dataset(train, labels(train), spec.features, batch_size, shuffle_seed=seed,
                weights=weights, repeat=steps_per_epoch is not None),
        validation_data=dataset(val, labels(val), spec.features, batch_size),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs, verbose=0, shuffle=False,  # the dataset shuffles itself
        callbacks=[best, _Progress(report, epochs), *(callbacks or [])])
    return FitResult(history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                     best_epoch=best.best_epoch, seconds=time.perf_counter() - start)


def predict(model: keras.Model, tweets: TweetSet, features: int,
            batch_size: int = 256) -> dict[str, np.ndarray]:
    """Head name -> (N,) probabilities."""
    out = model.predict(dataset(tweets, {}, features, batch_size), verbose=0)
    names = model.output_names
    return {name: np.asarray(p).reshape(-1) for name, p in zip(names, out)}
