"""`probe faithfulness` and `probe sanity`: can the attribution methods be believed?"""

from __future__ import annotations

import click

from probes.checks.faithfulness import METHODS
from probes.checks.sanity import METHODS as SANITY_METHODS
from probes.cli.fanout import ray_options
from probes.cli.merge import shard_command, shard_option
from probes.cli.options import comma_list, model_options, probe_options
from probes.cli.output import print_result
from probes.cli.output import progress
from probes.cli.saved import saved_results
from probes.cli.select import prepared


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
    _check("faithfulness", methods, samples, seed, batch_size, out_dir,
           as_json, shard, kw)


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
    _check("sanity", methods, samples, seed, batch_size, out_dir, as_json, shard,
           kw)


def _check(name, methods, samples, seed, batch_size, out_dir, as_json, shard, kw):
    """Runs check `name` on `methods` as the probe commands do (its shards on Ray with --ray)
    and prints it; with `shard`, only saves that shard's partial result (probes.cli.merge)."""
    got = run_saved(kw, name, samples, seed, out_dir,
                    {"methods": list(methods), "batch_size": batch_size}, ", ".join(methods),
                    as_json, shard)
    if got:
        print_result(got[0], as_json)


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
