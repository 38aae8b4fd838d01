"""What every per-sample probe command does: select the model, run the probe, save its result
beside its fingerprint, print a table or the JSON contract."""

from __future__ import annotations

import json

import click

from probes.cli.output import print_completeness, print_matrix, progress
from probes.cli.saved import run_probe, saved_results
from probes.cli.select import prepared


def probe_command(kw, name, samples, seed, out_dir, as_json, params, compare=False, show=(),
                  colour="auto", shard=None):
    """Selects the model, runs probe `name`, saves, prints a table or the JSON contract (and,
    for `show`, those samples' attribution maps on the text); with `shard` (K, N), only shard
    K's samples, saved as a partial result for `probe merge`."""
    from probes.results import stats
    from probes.cli.maps import check_show, print_maps, use_colour
    from probes.model.encoded import vocabularies

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
    summary = res.summary()
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
        print_maps(res, src.inputs, show, use_colour(colour), vocabularies(src.model))
