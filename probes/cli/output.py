"""What the commands print, and how a library error ends a command: one line on stderr."""

from __future__ import annotations

import json
import warnings

import click

from probes.results.text import table


def progress(line: str) -> None:
    click.echo(line, err=True)


def fail(err: Exception):
    """A library ValueError becomes one line on stderr and exit status 1."""
    raise click.ClickException(str(err)) from None


def print_matrix(res, summary):
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
                            for m in res.methods},
            "absolute_correlation": {
                m: {h: {i: [_finite(res.interval(m, s, h, i, absolute=True)[0])
                            for s in range(1, len(res.layers) + 1)]
                        for i in res.inputs} for h in res.heads}
                for m in res.methods}}))
        return
    header, rows = res.table()
    click.echo(f"Spearman's rho with the trained model's maps after re-initialising each layer "
               f"in turn (+layer: that layer and every one above it), mean over {n} samples; "
               f"passes: the 95% interval of the mean |rho| after the last step is below "
               f"{res.params['threshold']}")
    click.echo(table(header, rows, align="lll" + "r" * len(res.layers) + "l"))
    failing = sorted({r[0] for r in rows if r[-1] == "fails"})
    if failing:
        click.echo(f"FAILS: {', '.join(failing)}: the maps do not depend on the weights they "
                   "should explain")


def _finite(v):
    return float(v) if v == v else None
