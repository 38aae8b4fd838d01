"""`probe faithfulness` and `probe sanity`: can the attribution methods be believed?"""

from __future__ import annotations

import json
import warnings

import click

from probes.cli.common import (comma_list, model_options, prepared, probe_options, progress,
                               saved_results)
from probes.cli.fanout import ray_options
from probes.cli.merge import shard_command, shard_option
from probes.faithfulness import METHODS
from probes.sanity import METHODS as SANITY_METHODS
from probes.text import table


@click.command()
@model_options
@click.option("--methods", default=",".join(METHODS), show_default=True,
              callback=comma_list(METHODS),
              help="Rankings to compare (random is the floor every method should beat).")
@probe_options
@shard_option
@ray_options
def faithfulness(methods, samples, seed, batch_size, out_dir, as_json, shard, **kw):
    """Do the attributions rank what the heads use? Per head and input, remove the time steps
    in each method's order, most important first (deletion), or restore them into an input
    removed entirely (insertion), as `probe ablate --mode zero` removes them, and measure the
    head's logit; the areas under the normalised curves (1 at the sample, 0 with the input
    removed) compare the methods on the same samples: deletion lower is better, insertion
    higher."""
    _check("faithfulness", print_faithfulness, methods, samples, seed, batch_size, out_dir,
           as_json, shard, kw)


def print_faithfulness(res, n, as_json):
    """What `probe faithfulness` prints (its JSON contract with `as_json`)."""
    dele, ins = res.areas("deletion"), res.areas("insertion")
    if as_json:
        import numpy as np

        def medians(a):
            with warnings.catch_warnings():  # a cell without a path is all NaN: no mean
                warnings.simplefilter("ignore", RuntimeWarning)
                m = np.nanmedian(np.where(res.measurable()[None, :, :, None], a, np.nan),
                                 axis=3)
            return [[[None if not np.isfinite(v) else float(v) for v in row] for row in hm]
                    for hm in m]

        click.echo(json.dumps({"probe": "faithfulness", "heads": list(res.heads),
                               "inputs": list(res.inputs), "methods": list(res.methods),
                               "fractions": res.fractions.tolist(), "samples": n,
                               "measurable": res.measurable().tolist(),
                               "deletion_area": medians(dele), "insertion_area": medians(ins)}))
        return
    header, rows = res.table()
    click.echo(f"areas under the normalised curves over {n} samples, median [interquartile "
               "range]; deletion: lower is more faithful, insertion: higher")
    click.echo(table(header, rows, align="ll" + "r" * len(res.methods)))


@click.command()
@model_options
@click.option("--methods", default=",".join(SANITY_METHODS), show_default=True,
              callback=comma_list(SANITY_METHODS),
              help="Methods to check; `input` is the control that ignores the model.")
@probe_options
@shard_option
@ray_options
def sanity(methods, samples, seed, batch_size, out_dir, as_json, shard, **kw):
    """Do the attributions explain the model? Cascading randomisation (Adebayo et al. 2018):
    re-initialise the layers from the heads down, one more at a time, recompute each method's
    maps and give Spearman's rank correlation with the trained model's maps (mean over
    samples, per step); a method whose maps survive the randomisation fails. The control
    `input` ignores the model and must fail."""
    _check("sanity", print_sanity, methods, samples, seed, batch_size, out_dir, as_json, shard,
           kw)


def print_sanity(res, n, as_json):
    """What `probe sanity` prints (its JSON contract with `as_json`)."""
    if as_json:
        click.echo(json.dumps({
            "probe": "sanity", "heads": list(res.heads), "inputs": list(res.inputs),
            "methods": list(res.methods), "layers": list(res.layers), "samples": n,
            "verdict": {m: {h: {i: res.verdict(m, h, i) for i in res.inputs}
                            for h in res.heads} for m in res.methods},
            "correlation": {m: {h: {i: [_finite(res.interval(m, s, h, i)[0])
                                        for s in range(1, len(res.layers) + 1)]
                                    for i in res.inputs} for h in res.heads}
                            for m in res.methods}}))
        return
    header, rows = res.table()
    click.echo(f"Spearman's rho with the trained model's maps after re-initialising each layer "
               f"in turn (+layer: that layer and every one above it), mean over {n} samples; "
               f"passes: the 95% interval after the last step is below {res.params['threshold']}")
    click.echo(table(header, rows, align="lll" + "r" * len(res.layers) + "l"))
    failing = sorted({r[0] for r in rows if r[-1] == "fails"})
    if failing:
        click.echo(f"FAILS: {', '.join(failing)}: the maps do not depend on the weights they "
                   "should explain")


def _check(name, printer, methods, samples, seed, batch_size, out_dir, as_json, shard, kw):
    """Runs check `name` on `methods` as the probe commands do (its shards on Ray with --ray)
    and prints it with `printer`; with `shard`, only saves that shard's partial result
    (probes.cli.merge)."""
    got = run_saved(kw, name, samples, seed, out_dir,
                    {"methods": list(methods), "batch_size": batch_size}, ", ".join(methods),
                    as_json, shard)
    if got:
        printer(*got, as_json)


def run_saved(kw, name, samples, seed, out_dir, params, what, as_json=False, shard=None):
    """Selects the model and data, runs probe `name` once with `params` (its shards on Ray with
    --ray) and saves it as the probe commands do: (result, samples probed); with `shard` (K,
    N), only shard K's samples, saved as a partial result for `probe merge` (and None: nothing
    more to print)."""
    src, n, fanout = prepared(kw, samples, out_dir, shard)
    if shard:
        return shard_command(src, name, n, seed, out_dir, as_json, params, shard)
    progress(f"{name} of {src.name} on {n} samples: {what} ...")
    return saved_results(src, [(name, params)], n, seed, out_dir, fanout=fanout)[name], n


def _finite(v):
    return float(v) if v == v else None
