"""`probe shared`: what the heads' tasks do to the weights they share."""

from __future__ import annotations

import json

import click

from probes.cli.options import model_options
from probes.cli.output import progress
from probes.cli.saved import saved_results
from probes.cli.select import source
from probes.model.sources import DEFAULT_BATCH, DEFAULT_SAMPLES


@click.command()
@model_options
@click.option("--samples", type=click.IntRange(1), default=None,
              help=f"Held-out pairs or --data rows [default: {DEFAULT_SAMPLES}, or all if "
                   "fewer].")
@click.option("--minibatch", type=click.IntRange(2), default=64, show_default=True,
              help="Samples per mini-batch for the gradient cosine and conflict rate.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-2,
              show_default=True, help="Size of the coupling probe's single gradient step.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH,
              show_default=True,
              help="Rows per pass; bounds memory.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the results (shared-agreement-n<N>-seed<S>.json, "
                   "shared-coupling-...) [default: the run directory's probes/; none for "
                   "--model].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def shared(samples, minibatch, learning_rate, seed, batch_size, out_dir, as_json, **kw):
    """The link through shared weights: each task's loss gradient on every layer two heads
    share (norms, cosine, conflict rate), recorded over training and at the final weights;
    how far one task's gradient step moves the other heads (a step on a head's own weights
    must move the others by exactly 0.0); and the lookahead task affinity."""

    from probes.methods.taskgrads import shared_layers

    src = source(kw, samples)
    n = len(next(iter(src.inputs.values())))
    plan = [("shared/coupling", {"learning_rate": learning_rate, "batch_size": batch_size})]
    nothing = not shared_layers(src.model)
    if nothing:  # no task gradients to compare; the coupling shows the tasks are not linked
        progress(NOTHING_SHARED)
    else:
        progress(f"task gradients of {src.name} on {n} samples ...")
        plan.insert(0, ("shared/agreement", {"batch_size": minibatch}))
    saved = saved_results(src, plan, n, seed, out_dir)
    agree, couple = saved.get("shared/agreement"), saved["shared/coupling"]
    training = None
    if src.run_dir is not None:
        from mtl_models import runs

        training = runs.load_run(src.run_dir).taskgrads()
    record = {"probe": "shared", "model": src.name, "samples": n, "seed": seed,
              "shared_layers": sorted(shared_layers(src.model)),
              "agreement": agree.to_json() if agree else None, "coupling": couple.to_json(),
              "training": training}
    if as_json:
        click.echo(json.dumps(record))
        return
    _print(agree, couple, training)


NOTHING_SHARED = ("nothing is shared: no layer has weights used by two heads, so there are no "
                  "task gradients to compare, and a step on one task must move every other "
                  "head by exactly 0.0")


def _print(agree, couple, training):
    from probes.methods.coupling import record_table

    if agree is None:
        click.echo(NOTHING_SHARED)
    else:
        click.echo(agree.table())
    click.echo("")
    click.echo(couple.table())
    if agree is not None and training and training["records"]:
        click.echo("")
        click.echo(record_table(training))
