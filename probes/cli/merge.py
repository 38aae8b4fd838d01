"""`--shard K/N` on the per-sample probe commands, and `probe merge`: one run split into shards
(processes, machines) and put back together, equal to the unsharded run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from probes.cli.guard import deferred_interrupt, writable_dir
from probes.cli.output import fail, print_completeness, print_matrix, progress


def shard_option(f):
    """--shard K/N on the per-sample probe commands (ablate, attribute, faithfulness,
    sanity)."""
    return click.option(
        "--shard", metavar="K/N", default=None, callback=_parse_shard,
        help="Compute only shard K of N (contiguous blocks of the samples, K from 1) and save "
             "it as a partial result; `probe merge` puts the N shards together, equal to the "
             "unsharded run. Statistics come after the merge.")(f)


def _parse_shard(ctx, param, value):
    if value is None:
        return None
    from probes.run.shards import parse

    try:
        return parse(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def shard_command(src, name, samples, seed, out_dir, as_json, params, shard):
    """Runs shard (K, N) of probe `name` on a source and saves it; prints where it went."""
    from probes.cli.saved import saved_results
    from probes.run.shards import rows

    k, n = shard
    try:
        mine = rows(samples, k, n)
    except ValueError as err:
        fail(err)
    span = f"samples {mine[0]}-{mine[-1]} of {samples}"
    progress(f"{name} of {src.name}, shard {k}/{n}: {span} ...")
    res = saved_results(src, [(name, params)], samples, seed, out_dir, shard)[name]
    folder = Path(out_dir) if out_dir else src.run_dir / "probes"
    if as_json:
        click.echo(json.dumps({"probe": name, "model": src.name, "shard": res.params["shard"],
                               "sample_ids": [int(mine[0]), int(mine[-1]) + 1],
                               "folder": str(folder)}))
        return
    click.echo(f"shard {k}/{n} of {name} ({span}) saved in {folder}; when all {n} are done: "
               f"probe merge FOLDER... --out DIR")


@click.command()
@click.argument("parts", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the merged result, created if missing [default: print "
                   "only].")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per merged result (the contract of the unsharded "
                   "command).")
def merge(parts, out_dir, as_json):
    """Merge the shards of `probe ablate|attribute|faithfulness|sanity --shard K/N` runs (each
    PART a shard's --out folder or its .json file) into the full result, and print what the
    unsharded command prints. Refused unless the shards come from the same model, data, probe and
    parameters and cover every sample once."""
    from probes.results import stats
    from probes.results.result import ProbeResult
    from probes.run import shards, suite

    if out_dir:
        writable_dir(out_dir, "--out")
    try:
        groups = shards.shard_files(map(Path, parts))
    except ValueError as err:
        fail(err)
    for stem, files in groups.items():
        try:
            merged, fp = shards.merge_files(files)
        except ValueError as err:
            fail(ValueError(f"{stem}: {err}"))
        samples = len(merged.sample_ids)
        progress(f"merged {len(files)} shards of {stem} ({samples} samples)")
        if out_dir:
            with deferred_interrupt():
                progress(f"saved {suite.save(merged, Path(out_dir), stem, fp)}")
        if not isinstance(merged, ProbeResult):  # faithfulness or sanity
            from probes.cli import output

            output.print_result(merged, as_json)
            continue
        summary = merged.summary()
        extra = ({"completeness": stats.completeness(merged)}
                 if merged.completeness_gap is not None else {})
        if as_json:
            click.echo(json.dumps({**stats.to_json(merged, summary), **extra}))
            continue
        print_matrix(merged, summary)
        print_completeness(merged, extra)
