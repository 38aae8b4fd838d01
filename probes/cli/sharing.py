"""`probe sharing`: what the shared encoder is worth, tied vs untied vs single task."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import click

from mtl_models import runs
from mtl_models.tweets import TASK_NAMES
from probes.cli.guard import writable_dir
from probes.cli.options import (DEFAULTS, cache_dir_option, features_option,
                                seq_len_option)
from probes.cli.output import fail, progress


def _sizes(ctx, param, value):
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise click.BadParameter(f"expected distinct comma-separated pair counts >= 1; "
                                 f"received {value!r}")
    return tuple(sorted(sizes))


def sweep_options(f):
    """Options that define a sharing sweep (shared with `probe report --sharing`)."""
    from mtl_models import sharing as sh

    schedule = sh.Schedule()
    options = [
        click.option("--variant", type=click.Choice(sorted(sh.UNTIED)), default="separate",
                     show_default=True, help="The tied model; its untied counterpart is the "
                     "other arm."),
        click.option("--task-1", type=click.Choice(TASK_NAMES), default=sh.DEFAULT_TASKS[0],
                     show_default=True, help="Task of head_1."),
        click.option("--task-2", type=click.Choice(TASK_NAMES), default=sh.DEFAULT_TASKS[1],
                     show_default=True, help="Task of head_2."),
        click.option("--sizes", default=",".join(map(str, sh.DEFAULT_SIZES)), callback=_sizes,
                     show_default=True, help="Training-set sizes (pairs), comma-separated."),
        click.option("--seeds", type=click.IntRange(1, 100), default=sh.DEFAULT_SEEDS,
                     show_default=True, help="Seeds per size and arm (0..N-1)."),
        click.option("--labelled-1", type=click.IntRange(0), default=None,
                     help="At most this many training pairs carry head_1's label [default: "
                          "all]."),
        click.option("--labelled-2", type=click.IntRange(0), default=None,
                     help="At most this many training pairs carry head_2's label [default: "
                          "all]."),
        seq_len_option,
        features_option,
        click.option("--units", type=click.IntRange(1), default=DEFAULTS.units,
                     show_default=True, help="Size of each LSTM."),
        click.option("--style", type=click.FloatRange(0, 1), default=sh.DEFAULT_STYLE,
                     show_default=True, help="How strongly each author's own chain shows in "
                     "its tweets (lower: authors harder to tell apart; the question's world "
                     f"has {DEFAULTS.style}, where 10 pairs already suffice)."),
        click.option("--steps", type=click.IntRange(1), default=schedule.epochs
                     * schedule.steps_per_epoch, show_default=True,
                     help=f"Optimizer steps per run (batches of {schedule.batch_size}, "
                          f"validated every {schedule.steps_per_epoch}; the best is kept)."),
        cache_dir_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def run_sweep(kw):
    """(SharingResult, default output folder) of the sweep the options describe."""
    from mtl_models import sharing as sh
    from probes.engine.quiet import import_tensorflow

    schedule = sh.Schedule()
    try:
        base = runs.TrainConfig(seq_len=kw["seq_len"], features=kw["features"],
                                units=kw["units"], style=kw["style"],
                                min_len=min(DEFAULTS.min_len, kw["seq_len"]))
        schedule = dataclasses.replace(
            schedule, epochs=-(-kw["steps"] // schedule.steps_per_epoch))
        args = dict(variant=kw["variant"], tasks=(kw["task_1"], kw["task_2"]),
                    sizes=kw["sizes"], seeds=kw["seeds"],
                    labelled=(kw["labelled_1"], kw["labelled_2"]))
        blob = json.dumps([args, dataclasses.asdict(base), dataclasses.asdict(schedule)],
                          sort_keys=True, default=list)
        folder = (Path(kw["cache_dir"] or runs.cache_root()) / "sharing"
                  / f"{kw['variant']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}")
        writable_dir(folder, "cache")  # before minutes of training, not after
        import_tensorflow()
        from probes.methods.coupling import training_monitor

        started = time.perf_counter()
        result = sh.sharing(**args, base=base, schedule=schedule, cache=kw["cache_dir"],
                            monitor=training_monitor, report=progress)
        progress(f"all {len(result.runs)} runs ready [{time.perf_counter() - started:.0f}s]")
        return result, folder
    except ValueError as err:
        fail(err)
    except OSError as err:
        fail(ValueError(f"Expected a writable cache directory; received "
                        f"{kw['cache_dir'] or runs.cache_root()}: {err.strerror or err}"))


@click.command()
@sweep_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for sharing.json [default: <cache>/sharing/<variant>-<key>].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def sharing(out_dir, as_json, **kw):
    """What sharing the encoder is worth: train, at each training-set size and seed, the tied
    model with both tasks, its untied counterpart (one LSTM per tweet) with both tasks, and the
    tied model with one task alone (the other head's loss weight 0); report each head's
    held-out accuracy next to the Bayes-optimal reference and the transfers (tied - single,
    tied - untied) with 95% t intervals over seeds. Every run is cached; a second call only
    reads them."""
    result, folder = run_sweep(kw)
    try:
        path = result.save(writable_dir(out_dir, "--out") if out_dir else folder)
    except OSError as err:
        fail(ValueError(f"Expected a writable --out; received {out_dir}: {err}"))
    if as_json:
        click.echo(json.dumps({"path": str(path), **result.to_json()}))
        return
    click.echo(result.table())
    click.echo(f"saved {path}")
