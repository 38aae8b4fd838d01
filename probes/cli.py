"""The `probe` command: a thin click group over mtl_models/ and probes/."""

from __future__ import annotations

import json
import sys

import click

from mtl_models import runs
from mtl_models.tweets import DEFAULT_TASKS, REFERENCE_SOURCES, TASKS
from mtl_models.variants import VARIANTS
from probes.text import table


def _progress(line: str) -> None:
    click.echo(line, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mtl-probe")
def main():
    """Measure how information flows through Keras multi-task models that share weights."""


def _train_options(f):
    """Options that define a training run (shared by every command that may train)."""
    options = [
        click.option("--variant", type=click.Choice(VARIANTS), default="concat", show_default=True,
                     help="Which model of the question."),
        click.option("--task-1", type=click.Choice(sorted(TASKS)), default=DEFAULT_TASKS[0],
                     show_default=True, help="Task of head_1."),
        click.option("--task-2", type=click.Choice(sorted(TASKS)), default=DEFAULT_TASKS[1],
                     show_default=True, help="Task of head_2."),
        click.option("--same-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Probability that both tweets share an author (0.5 balances "
                          "same_author)."),
        click.option("--seq-len", type=click.IntRange(2), default=280, show_default=True),
        click.option("--features", type=click.IntRange(4), default=256, show_default=True),
        click.option("--units", type=click.IntRange(1), default=64, show_default=True,
                     help="Size of the shared LSTM."),
        click.option("--hidden", type=click.IntRange(1), default=64, show_default=True,
                     help="Hidden width of concat_mlp."),
        click.option("--train-samples", type=click.IntRange(1), default=3000, show_default=True),
        click.option("--epochs", type=click.IntRange(1), default=10, show_default=True),
        click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True),
        click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-3,
                     show_default=True, help="RMSprop learning rate (gradients clipped to norm 1)."),
        click.option("--heldout-samples", type=click.IntRange(1), default=1000,
                     show_default=True, help="Held-out pairs saved for evaluation and probes."),
        click.option("--seed", type=click.IntRange(0), default=0, show_default=True),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Where runs are cached [default: $MTL_PROBE_CACHE or "
                          "~/.cache/mtl-probe]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(kw) -> runs.TrainConfig:
    try:
        return runs.TrainConfig(
            variant=kw["variant"], tasks=(kw["task_1"], kw["task_2"]),
            same_rate=kw["same_rate"], seq_len=kw["seq_len"], features=kw["features"],
            units=kw["units"], hidden=kw["hidden"], n_train=kw["train_samples"],
            epochs=kw["epochs"], batch_size=kw["batch_size"], seed=kw["seed"],
            learning_rate=kw["learning_rate"], n_heldout=kw["heldout_samples"],
            min_len=min(40, kw["seq_len"]))
    except ValueError as err:
        raise click.UsageError(str(err)) from None


def _ensure_run(config: runs.TrainConfig, cache_dir, force: bool = False):
    from mtl_models.quiet import import_tensorflow

    if not force and runs.is_complete(runs.run_dir_for(config, cache_dir)):
        return runs.load_run(runs.run_dir_for(config, cache_dir)), False
    import_tensorflow()
    _progress(f"training {config.variant} (tasks {', '.join(config.tasks)}) ...")
    path, trained = runs.train_run(config, cache=cache_dir, force=force, report=_progress)
    return runs.load_run(path), trained


@main.command()
@_train_options
@click.option("--force", is_flag=True, help="Train again even if the run is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print accuracy.json and the run path.")
def train(force, as_json, **kw):
    """Train a variant on synthetic tweets (or reuse the cached run) and compare each head's
    held-out accuracy with the best possible from tweet_a alone, tweet_b alone, both, neither."""
    config = _config(kw)
    run, trained = _ensure_run(config, kw["cache_dir"], force)
    if as_json:
        click.echo(json.dumps({"run": str(run.path), "variant": config.variant,
                               "trained": trained, **run.accuracy}))
        return
    seconds = run.history["seconds"]
    epochs = len(run.history["history"]["loss"])
    click.echo(f"run: {run.path}")
    click.echo(f"{'trained now' if trained else 'cached'}: {seconds:.1f} s of training, "
               f"best epoch {run.history['best_epoch'] + 1} of {epochs}")
    rows = [[head, h["task"], h["accuracy"]] + [h["reference"][s] for s in REFERENCE_SOURCES]
            for head, h in run.accuracy["heads"].items()]
    click.echo(f"held-out accuracy on {run.accuracy['samples']} pairs; reference = Bayes-optimal "
               "from what it may read")
    click.echo(table(["head", "task", "model"] + [f"ref:{s}" for s in REFERENCE_SOURCES], rows,
                     align="llrrrrr"))


if __name__ == "__main__":
    sys.exit(main())
