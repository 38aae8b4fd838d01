"""`probe paths`: the exact split of each head over the call sites it concatenates, and the
interaction contrast of each pair of inputs."""

from __future__ import annotations

import click

import json

from probes.cli.options import model_options, probe_options

from probes.cli.output import progress

from probes.cli.saved import saved_results

from probes.cli.select import source
from probes.results.text import table


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
    _print_decomposition(dec, n)
    if inter is not None:
        click.echo("")
        _print_interaction(inter, summary)


def _print_decomposition(dec, n):
    click.echo(f"decomposition of {dec.model} on {n} samples: pre-activation = sum of parts + "
               "bias")
    rows, notes = [], []
    for split in dec.splits:
        s = split.summary()
        for k, part in enumerate(s["parts"]):
            rows.append([s["target"], part, ", ".join(s["part_inputs"][k]), f"{s['mean'][k]:.4g}",
                         f"{s['std'][k]:.4g}", f"{s['share_raw'][k]:.3f}",
                         f"{s['share_centred'][k]:.3f}"])
        if s["kind"] == "not_decomposable":
            rows.append([s["target"], "(not decomposable)", "-", "-", "-", "-", "-"])
            notes.append(s["reason"])
            continue
        rows.append([s["target"], "bias", "", f"{s['bias']:.4g}", "0",
                     f"{s['share_raw_bias']:.3f}", "0"])
        notes.append(f"{s['reason']}; max |parts + bias - logit| = {s['max_abs_residual']:.2e} "
                     f"(logit std {s['logit_std']:.4g})")
    click.echo(table(["head", "part", "inputs", "mean", "std", "share raw", "share centred"],
                     rows, align="lllrrrr"))
    for note in notes:
        click.echo(note)
    click.echo("share raw: mean |term| / sum of mean |term| (bias included); share centred: the "
               "same after subtracting each term's mean over samples")


def _print_interaction(inter, s):
    ci = round(100 * s.settings["confidence"])
    click.echo(f"interaction of {inter.model} over {inter.rows.shape[0]} sample pairs "
               "(logit space)")
    rows = []
    for t, target in enumerate(inter.targets):
        for q, (i, j) in enumerate(inter.input_pairs):
            rows.append([target, f"{i} x {j}", f"{s.mean_abs[t, q]:.3g}",
                         f"[{s.ci_low[t, q]:.3g}, {s.ci_high[t, q]:.3g}]",
                         f"{s.logit_std[t]:.4g}", f"{s.relative[t, q]:.3g}", s.verdict[t, q]])
    click.echo(table(["head", "inputs", "mean |contrast|", f"{ci}% CI", "logit std", "relative",
                      "verdict"], rows, align="llrrrrl"))
    click.echo("contrast f(a,b) - f(a',b) - f(a,b') + f(a',b'); relative = mean |contrast| / "
               f"logit std; additive: the {ci}% CI of the relative contrast is below "
               f"{s.settings['tolerance']:g} (float noise), interacts: above it")
