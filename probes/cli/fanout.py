"""`--ray [ADDRESS]` and `--shards N` on `probe ablate`, `attribute`, `faithfulness` and
`sanity`: the probe's shards run as Ray tasks (probes.run.fanout) and merged into the plain
command's result, which is then printed and saved as the plain command does."""

from __future__ import annotations

import click

from probes.cli.output import fail, progress

LOCAL = ""  # --ray without an address: Ray's default (see probes.run.fanout.connect)


def ray_options(f):
    """--ray [ADDRESS] and --shards N."""
    options = [
        click.option("--ray", "ray_address", is_flag=False, flag_value=LOCAL, default=None,
                     metavar="[ADDRESS]",
                     help="Run the samples' shards as Ray tasks and merge them: the same "
                          "result as without (pip install 'mtl-probe[ray]'). Without an "
                          "address, a new local Ray of every CPU (or the cluster `ray start` "
                          "began on this machine, or $RAY_ADDRESS); with one, the cluster whose "
                          "head is HOST:PORT. Integrated gradients then needs --steps."),
        click.option("--shards", type=click.IntRange(1), default=None,
                     help="Ray tasks to split the samples into [default: the cluster's CPUs, "
                          "or 4]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def fanout_of(kw, shard=None) -> dict | None:
    """The Ray options of a command's keywords (with --unsafe and --custom-module for the
    workers' copy of the model), or None without --ray."""
    address, shards = kw.get("ray_address"), kw.get("shards")
    if address is None:
        if shards is not None:
            raise click.UsageError("Expected --shards only with --ray; received it without")
        return None
    if shard is not None:
        raise click.UsageError("Expected --ray or --shard, not both (--ray runs every shard); "
                               "received both")
    from probes.run.fanout import require_ray

    try:  # before the model loads
        require_ray()
    except ValueError as err:
        fail(err)
    return {"address": address or None, "shards": shards, "unsafe": kw.get("unsafe", False),
            "custom_modules": tuple(kw.get("custom_modules") or ())}


def run_on_ray(src, name: str, params: dict, fanout: dict):
    """(result, fingerprint) of probe `name` on a source, fanned out on Ray: those of the plain
    run. One Ray serves the whole command (the --compare run too) and stops with it."""
    from probes.run import fanout as engine, suite

    click.get_current_context().with_resource(engine.connect(fanout["address"]))
    return suite.run_on_ray(src, name, params, report=progress, **fanout)
