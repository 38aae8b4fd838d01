"""What the commands print, and how a library error ends a command: one line on stderr."""

from __future__ import annotations

import json

import click


def progress(line: str) -> None:
    """A progress line, on stderr (stdout keeps only the result: a table or the JSON)."""
    click.echo(line, err=True)


def fail(err: Exception):
    """A library ValueError becomes one line on stderr and exit status 1."""
    raise click.ClickException(str(err)) from None


def print_matrix(res, summary):
    """The dependency matrix of an ablation or attribution result, as a table."""
    from probes.results.stats import format_table

    click.echo(format_table(res, summary))


def print_completeness(res, extra: dict) -> None:
    """Integrated gradients' completeness line (and its warning), from extra["completeness"]."""
    if "completeness" not in extra:
        return
    c = extra["completeness"]
    click.echo(f"completeness: {c['steps']} {c['quadrature']} nodes, median relative "
               f"gap {c['median_gap']:.2e}, {c['samples_over_5pct']} samples above 5%")
    if not res.params["converged"]:
        click.echo(f"WARNING: the median completeness gap is above "
                   f"{res.params['tolerance']:.0%}: the attributions are approximate "
                   "(more --steps, or --baseline shuffle, may help)")


def print_result(res, as_json: bool) -> None:
    """A result as a command prints it: its table, or its JSON contract with `as_json`."""
    click.echo(json.dumps(res.to_json()) if as_json else res.table())
