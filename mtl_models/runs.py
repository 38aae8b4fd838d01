"""Training runs saved as directories and cached by their configuration.

A run directory holds:
  model.keras      the trained model (weights of the best validation epoch)
  heldout.npz      held-out tweet pairs as int16 codes (PAD = -1), their authors and labels
  history.json     per-epoch metrics, the best epoch, the training time
  accuracy.json    held-out accuracy per head next to the Bayes-optimal reference accuracies
  taskgrads.json   (when trained with a monitor) task gradients on the shared weights and task
                   affinity, every few training steps
  manifest.json    versions, seed, every argument, the cache key; written last
The directory is built under a temporary name and renamed into place when complete, so an
interrupted run leaves nothing that a later run could mistake for a trained model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

# TrainConfig is defined in mtl_models.config; runs.TrainConfig is the name callers use.
from mtl_models.config import FORMAT_VERSION, TrainConfig
from mtl_models.references import reference_accuracy
from mtl_models.tweets import TweetSet
from probes import one_hot
from mtl_models.variants import HEADS
from probes.results import atomic
from probes.results.store import versions

# Held-out pairs beyond the saved ones are generated in blocks of this size, each from its own
# child seed of the run's data seed (EXTRA_KEY keeps them apart from every other stream).
EXTRA_BLOCK = 1000
EXTRA_KEY = 0xE87A


def cache_root() -> Path:
    """$MTL_PROBE_CACHE, else $XDG_CACHE_HOME/mtl-probe, else ~/.cache/mtl-probe."""
    if os.environ.get("MTL_PROBE_CACHE"):
        return Path(os.environ["MTL_PROBE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mtl-probe"


def run_dir_for(config: TrainConfig, cache: Path | None = None) -> Path:
    return Path(cache or cache_root()) / "runs" / f"{config.variant}-{config.key()}"


def git_commit() -> str | None:
    """Commit of the source tree this package runs from, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def manifest(kind: str, arguments: dict, seed: int) -> dict:
    return {"kind": kind, "format_version": FORMAT_VERSION, "seed": seed,
            "arguments": arguments, "versions": versions(), "commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / "manifest.json").is_file()


MONITOR_SAMPLES = 64


def train_run(config: TrainConfig, *, cache: Path | None = None, force: bool = False,
              report: Callable[[str], None] = lambda line: None,
              monitor: Callable | None = None) -> tuple[Path, bool]:
    """Trains `config` unless a complete run with the same key is cached.

    Args:
        monitor: optional factory (model, inputs list, labels list) -> a Keras callback with a
            `record()` method, given the first MONITOR_SAMPLES validation pairs; its record is
            saved as taskgrads.json (probes.methods.coupling.training_monitor records the task
            gradients on the shared weights).

    Returns:
        (run directory, whether it was trained now rather than reused).
    """
    final = run_dir_for(config, cache)
    if is_complete(final) and not force:
        return final, False
    from mtl_models import training, variants  # TensorFlow only when training

    seeds = config.seeds()
    started = time.perf_counter()
    spec = config.world(world_seed=seeds["world"])
    rng = np.random.default_rng(seeds["data"])
    train_set = spec.draw(config.n_train, rng, "train")
    val_set = spec.draw(config.n_val, rng, "val")
    heldout = spec.draw(config.n_heldout, rng, "heldout")
    report(f"data: {config.n_train} train / {config.n_val} validation / {config.n_heldout} "
           f"held-out pairs of {config.seq_len} x {config.features} "
           f"[{time.perf_counter() - started:.1f}s]")
    model = variants.build_model(config.variant, seq_len=config.seq_len,
                                 features=config.features, units=config.units,
                                 hidden=config.hidden, seed=seeds["init"],
                                 learning_rate=config.learning_rate, clipnorm=config.clipnorm,
                                 loss_weights=config.loss_weights)
    callbacks = []
    if monitor is not None:
        probe = val_set.take(np.arange(min(MONITOR_SAMPLES, config.n_val)))
        callbacks.append(monitor(
            model, [one_hot(probe.codes_a, spec.features), one_hot(probe.codes_b, spec.features)],
            [probe.labels(t, spec) for t in config.tasks]))
    fitted = training.fit(model, train_set, val_set, spec, config.tasks, epochs=config.epochs,
                          batch_size=config.batch_size, patience=config.patience,
                          seed=seeds["shuffle"], report=report, callbacks=callbacks,
                          labelled=config.labelled, steps_per_epoch=config.steps_per_epoch)
    if fitted.best_epoch < 0:
        raise ValueError(f"Expected a finite validation loss in some epoch; received none in "
                         f"{config.epochs} epoch(s) (try a lower --learning-rate)")
    at = time.perf_counter()
    predicted = training.predict(model, heldout, config.features)
    accuracy = evaluate(predicted, heldout, spec, config.tasks)
    stages = {"held-out accuracy": time.perf_counter() - at}
    at = time.perf_counter()
    with atomic.staging_dir(final) as tmp:
        model.save(tmp / "model.keras")
        labels = {h: heldout.labels(t, spec) for h, t in zip(HEADS, config.tasks)}
        atomic.write_npz(tmp / "heldout.npz", codes_a=heldout.codes_a,
                         codes_b=heldout.codes_b, author_a=heldout.author_a,
                         author_b=heldout.author_b, **labels)
        atomic.write_json(tmp / "history.json", {"history": fitted.history,
                                                 "best_epoch": fitted.best_epoch,
                                                 "seconds": fitted.seconds})
        atomic.write_json(tmp / "accuracy.json", accuracy)
        if callbacks:
            atomic.write_json(tmp / "taskgrads.json", callbacks[0].record())
        info = manifest("train", dataclasses.asdict(config), config.seed)
        info.update(key=config.key(), child_seeds=seeds, seconds=time.perf_counter() - started)
        atomic.write_json(tmp / "manifest.json", info)
    stages["saving"] = time.perf_counter() - at
    record = getattr(callbacks[0], "seconds", None) if callbacks else None
    fit = f"fit {fitted.seconds:.1f} s" + (
        f" (the gradient record {record:.1f} s of it)" if record is not None else "")
    rest = ", ".join(f"{name} {s:.1f} s" for name, s in stages.items())
    report(f"trained {config.variant} in {time.perf_counter() - started:.1f} s: {fit}, {rest}")
    return final, True


def evaluate(predicted: dict[str, np.ndarray], tweets: TweetSet, spec, tasks) -> dict:
    """Held-out accuracy per head beside the reference accuracies of its task."""
    heads = {}
    for head, task in zip(HEADS, tasks):
        labels = tweets.labels(task, spec)
        heads[head] = {"task": task,
                       "accuracy": float(np.mean((predicted[head] > 0.5) == (labels > 0.5))),
                       "reference": reference_accuracy(tweets, task, spec)}
    return {"samples": len(tweets), "heads": heads}


@dataclasses.dataclass(frozen=True)
class Run:
    """A loaded run directory (the model is loaded on demand: it needs TensorFlow)."""

    path: Path
    manifest: dict
    accuracy: dict
    history: dict

    @property
    def config(self) -> TrainConfig:
        args = dict(self.manifest["arguments"])
        for name in ("tasks", "loss_weights", "labelled"):
            if name in args:
                args[name] = tuple(args[name])
        return TrainConfig(**args)

    def heldout(self, n: int | None = None, report: Callable[[str], None] = lambda line: None
                ) -> tuple[TweetSet, dict[str, np.ndarray]]:
        """The first `n` held-out tweet pairs (default: the saved ones) and labels per head.

        Pairs beyond the saved `n_heldout` are drawn from the run's world in blocks of
        EXTRA_BLOCK, block b from SeedSequence([data seed, EXTRA_KEY, b]): the same `n` always
        gives the same pairs, and the first pairs of a larger `n` are those of a smaller one.
        """
        try:
            with np.load(self.path / "heldout.npz", allow_pickle=False) as z:
                tweets = TweetSet(z["codes_a"], z["codes_b"], z["author_a"], z["author_b"])
                labels = {h: z[h] for h in HEADS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as err:
            raise ValueError(f"Expected held-out data in {self.path / 'heldout.npz'}; "
                             f"received {type(err).__name__}: {err}") from None
        saved = len(tweets)
        if n is None or n <= saved:
            rows = np.arange(saved if n is None else n)
            return tweets.take(rows), {h: y[rows] for h, y in labels.items()}
        config, seeds = self.config, self.config.seeds()
        spec = config.world(world_seed=seeds["world"])
        blocks = -(-(n - saved) // EXTRA_BLOCK)
        report(f"generating {n - saved} held-out pairs beyond the {saved} saved in the run "
               f"(from its world and data seed, {blocks} block(s) of {EXTRA_BLOCK}) ...")
        extra = [spec.draw(EXTRA_BLOCK, np.random.default_rng(
                     np.random.SeedSequence([seeds["data"], EXTRA_KEY, b])), "heldout")
                 for b in range(blocks)]
        parts = [tweets] + extra
        merged = TweetSet(*(np.concatenate(f)[:n] for f in
                            zip(*(dataclasses.astuple(p) for p in parts))))
        labels = {h: np.concatenate([labels[h]] + [p.labels(t, spec) for p in extra])[:n]
                  for h, t in zip(HEADS, config.tasks)}
        return merged, labels

    def taskgrads(self) -> dict | None:
        """The training-time record of task gradients (taskgrads.json), or None if the run was
        trained without a monitor; a malformed file is an error."""
        path = self.path / "taskgrads.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            record["records"]  # a required key
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"Expected a training record at {path}; received "
                             f"{type(err).__name__}: {err}") from None
        return record

    def model(self):
        import keras

        try:
            return keras.saving.load_model(self.path / "model.keras", safe_mode=True)
        except Exception as err:  # noqa: BLE001 (Keras raises many types for a bad file)
            raise ValueError(f"Expected a loadable model.keras in {self.path} (--force trains "
                             f"again); received {type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''}") from None


def ensure_run(config: TrainConfig, cache: Path | None = None, *, force: bool = False,
               report: Callable[[str], None] = lambda line: None, monitor=None,
               before_training: Callable[[], None] = lambda: None) -> tuple[Run, bool]:
    """(the cached run of `config`, whether it was trained now): loaded when complete (and not
    `force`), else trained first (`before_training` runs just before; `monitor` as for
    train_run)."""
    final = run_dir_for(config, cache)
    if not force and is_complete(final):
        return load_run(final), False
    before_training()
    report(f"training {config.variant} (tasks {', '.join(config.tasks)}) ...")
    path, trained = train_run(config, cache=cache, force=force, report=report, monitor=monitor)
    return load_run(path), trained


def load_run(path) -> Run:
    """Reads a complete run directory; a missing or malformed file is an error."""
    path = Path(path)
    if not is_complete(path):
        raise ValueError(f"Expected a complete run directory with manifest.json; received {path}")
    parts = {}
    for name in ("manifest", "accuracy", "history"):
        try:
            parts[name] = json.loads((path / f"{name}.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Expected valid JSON in {path / (name + '.json')}; "
                             f"received {type(err).__name__}: {err}") from None
    return Run(path=path, **parts)
