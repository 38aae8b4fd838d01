"""`probe train` and `probe structure`."""

from __future__ import annotations

import json

import click

from mtl_models import runs
from mtl_models.tweets import REFERENCE_SOURCES
from probes.cli.options import model_options, train_options
from probes.cli.output import fail
from probes.cli.select import ensure_run, selection, train_config
from probes.results.text import table


@click.command()
@train_options
@click.option("--force", is_flag=True, help="Train again even if the run is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print accuracy.json and the run path.")
def train(force, as_json, **kw):
    """Train a variant on synthetic tweets (or reuse the cached run) and compare each head's
    held-out accuracy with the best possible from tweet_a alone, tweet_b alone, both, neither."""
    config = train_config(kw)
    run, trained = ensure_run(config, kw["cache_dir"], force)
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
    what = ("the Bayes rule with tempered character chains fitted on the training texts "
            "(empirical)" if config.corpus else "Bayes-optimal")
    click.echo(f"held-out accuracy on {run.accuracy['samples']} pairs; reference = {what} "
               "from what it may read")
    click.echo(table(["head", "task", "model"] + [f"ref:{s}" for s in REFERENCE_SOURCES], rows,
                     align="llrrrrr"))


@click.command()
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def structure(as_json, **kw):
    """Which inputs can reach which heads (per call site), and which layers are shared."""
    from probes.engine.quiet import import_tensorflow
    from probes.model.graph import structure as graph_structure
    from probes.model.sources import resolve

    which = selection(kw, need_data=False)
    import_tensorflow()
    try:
        if which == "variant":
            from mtl_models.variants import build_model

            model = build_model(kw["variant"])  # the graph needs no trained weights
        elif which == "run_dir":
            model = runs.load_run(kw["run_dir"]).model()
        else:
            model = resolve(kw["model_path"], unsafe=kw["unsafe"],
                            custom_modules=kw["custom_modules"]).model
    except ValueError as err:
        fail(err)
    s = graph_structure(model)
    if as_json:
        click.echo(json.dumps({"model": kw["variant"] or kw["run_dir"] or kw["model_path"],
                               **s.to_json()}))
        return
    click.echo(s.table())
