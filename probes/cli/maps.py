"""Printing attribution maps on the text (`probe attribute --show K`)."""

from __future__ import annotations

import os
import sys

import click
import numpy as np

from probes.results import textmaps


def use_colour(choice: str) -> bool:
    """--color auto: colour on a terminal unless NO_COLOR is set (no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def check_show(show, samples: int):
    bad = [k for k in show if k >= samples]
    if bad:
        raise click.UsageError(f"Expected --show sample indices below {samples}, the samples "
                               f"probed; received {bad}")


def print_maps(res, inputs, show, ansi: bool, vocabularies=None) -> None:
    """Each shown sample's inputs, coloured by every head's signed attribution; token ids
    shown as the text of their tokens where `vocabularies` ({input name: tokens by id}) has
    them."""
    vocabularies = vocabularies or {}
    click.echo("")
    click.echo(f"attribution maps ({res.method}): red/+ pushes the head's score up, blue/- "
               "down; one scale per head and sample (its largest |value| over the inputs)")
    for k in show:
        rows = {name: np.asarray(inputs[name][k:k + 1])[0] for name in res.inputs}
        for h, head in enumerate(res.heads):
            maps = [res.maps[i][h, k] for i in range(len(res.inputs))]
            top = textmaps.scale(maps)
            click.echo("")
            click.echo(f"sample {int(res.sample_ids[k])}, {head} (scale {top:.3g}):")
            for name, m in zip(res.inputs, maps):
                found = textmaps.symbols(rows[name], vocabularies.get(name))
                if found is None:
                    click.echo(f"  {name}: not text; map values "
                               + np.array2string(np.asarray(m).ravel()[:16], precision=3))
                    continue
                shown, positions = found
                click.echo(f"  {name}:")
                click.echo(textmaps.render(shown, np.asarray(m)[positions], top, ansi))
