"""The model a command works on: --variant (trained first if needed), --run or --model/--data,
resolved into a probes.model.sources.Source."""

from __future__ import annotations

import click

from mtl_models import runs
from mtl_models.corpus import config_defaults
from probes.cli.guard import writable_dir
from probes.cli.options import DEFAULTS
from probes.cli.output import fail, progress


def variant_config(variant: str, corpus: str | None) -> runs.TrainConfig:
    """The default training configuration of a built-in variant on the tweets or a corpus."""
    try:
        return runs.TrainConfig(variant=variant, **config_defaults(corpus))
    except ValueError as err:
        fail(err)


def train_config(kw) -> runs.TrainConfig:
    try:
        return runs.TrainConfig(
            variant=kw["variant"], tasks=(kw["task_1"], kw["task_2"]),
            same_rate=kw["same_rate"], seq_len=kw["seq_len"], features=kw["features"],
            units=kw["units"], hidden=kw["hidden"], n_train=kw["train_samples"],
            epochs=kw["epochs"], batch_size=kw["batch_size"], seed=kw["seed"],
            learning_rate=kw["learning_rate"], n_heldout=kw["heldout_samples"],
            min_len=min(DEFAULTS.min_len, kw["seq_len"]), **config_defaults(kw["corpus"]))
    except ValueError as err:
        raise click.UsageError(str(err)) from None


def ensure_run(config: runs.TrainConfig, cache_dir, force: bool = False):
    """The cached run of `config`, trained first if needed (mtl_models.runs.ensure_run, with
    the gradient record); errors end the command."""
    from probes.engine.quiet import import_tensorflow
    from probes.methods.coupling import training_monitor

    final = runs.run_dir_for(config, cache_dir)

    def before_training():
        writable_dir(final.parent, "cache")  # before a minute of training, not after
        import_tensorflow()

    try:
        return runs.ensure_run(config, cache_dir, force=force, report=progress,
                               monitor=training_monitor, before_training=before_training)
    except ValueError as err:
        fail(err)
    except OSError as err:
        fail(ValueError(f"Expected a writable cache directory; received {str(final.parent)!r}: "
                        f"{err.strerror or err}"))


def selection(kw, need_data: bool) -> str:
    chosen = [k for k in ("variant", "run_dir", "model_path") if kw.get(k)]
    if len(chosen) != 1:
        raise click.UsageError("Expected exactly one of --variant, --run, --model; received "
                               f"{len(chosen)}")
    if need_data and chosen[0] == "model_path" and not kw.get("data_path"):
        raise click.UsageError("Expected --data FILE.npz with --model; received none")
    if chosen[0] != "variant" and kw.get("corpus"):
        raise click.UsageError("Expected --corpus only with --variant; received it with "
                               f"--{chosen[0].replace('_dir', '').replace('_path', '')}")
    if chosen[0] != "model_path" and kw.get("data_path"):
        raise click.UsageError("Expected --data only with --model; received it with "
                               f"--{chosen[0].replace('_dir', '').replace('_path', '')}")
    return chosen[0]


def source(kw, samples):
    """Resolves the model selection into a probes.model.sources.Source (training if needed)."""
    from probes.engine.quiet import import_tensorflow
    from probes.model import sources
    from probes.cli.runsource import from_run

    which = selection(kw, need_data=True)
    import_tensorflow()
    try:
        if which == "model_path":
            return sources.resolve(kw["model_path"], kw["data_path"], samples=samples,
                                   default_samples=sources.DEFAULT_SAMPLES, what="--samples",
                                   unsafe=kw["unsafe"], custom_modules=kw["custom_modules"])
        if which == "run_dir":
            run = runs.load_run(kw["run_dir"])
        else:
            run, _ = ensure_run(variant_config(kw["variant"], kw.get("corpus")),
                                kw["cache_dir"])
        return from_run(run, samples, report=progress)
    except ValueError as err:
        fail(err)


def prepared(kw, samples, out_dir, shard):
    """What every probe command does before the work: checks the model selection, --ray's
    options (probes.cli.fanout) and --out (writable; required for a --shard of a --model, so
    `probe merge` can read it), then loads the source and prints its notes.

    Returns:
        (source, samples it holds, the Ray options or None).
    """
    from probes.cli.fanout import fanout_of

    which = selection(kw, need_data=True)
    fanout = fanout_of(kw, shard)
    if out_dir:
        writable_dir(out_dir, "--out")  # checked before the work, not after
    if shard and not out_dir and which == "model_path":
        raise click.UsageError("Expected --out DIR with --shard and --model (a shard's result "
                               "is for `probe merge`); received none")
    src = source(kw, samples)
    for note in src.notes:
        progress(note)
    return src, len(next(iter(src.inputs.values()))), fanout
