"""`probe paths`: the exact split of each head over the call sites it concatenates, and the
interaction contrast of each pair of inputs."""

from __future__ import annotations

import json

import click

from probes.cli.options import model_options, probe_options
from probes.cli.output import progress
from probes.cli.saved import saved_results
from probes.cli.select import source


@click.command()
@model_options
@click.option("--pairs", type=click.IntRange(1), default=None,
              help="Sample pairs (a, b), (a', b') per input pair for the interaction contrast "
                   "[default: the number of samples].")
@click.option("--tolerance", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=1e-5, show_default=True,
              help="Mean |contrast| / logit std below which a head is additive (float noise).")
@probe_options
def paths(pairs, tolerance, samples, seed, batch_size, out_dir, as_json, **kw):
    """What each head gets from each call site, and whether it combines inputs additively.

    A Dense head on a concatenation splits exactly into one term per concatenated call site
    (the shared layer on each input) plus its bias; the interaction contrast f(a,b) - f(a',b) -
    f(a,b') + f(a',b') in logit space is float noise exactly when the head is additive in the
    two inputs."""

    src = source(kw, samples)
    for note in src.notes:
        if not note.startswith("no labels"):  # paths use no labels
            progress(note)
    n = len(next(iter(src.inputs.values())))
    progress(f"paths of {src.name} on {n} samples ...")
    probes_run = [("paths/decomposition", {"batch_size": batch_size})]
    if len(src.inputs) > 1:
        probes_run.append(("paths/interaction", {"pairs": pairs, "tolerance": tolerance,
                                                 "batch_size": batch_size}))
    else:
        progress("the model has one input: no interaction contrast")
    saved = saved_results(src, probes_run, n, seed, out_dir)
    dec, inter = saved["paths/decomposition"], saved.get("paths/interaction")
    summary = inter.summary() if inter is not None else None
    if as_json:
        click.echo(json.dumps({"probe": "paths", "model": src.name, "samples": n, "seed": seed,
                               "decomposition": dec.to_json(),
                               "interaction": inter.to_json(summary) if inter else None}))
        return
    click.echo(dec.table())
    if inter is not None:
        click.echo("")
        click.echo(inter.table(summary))
