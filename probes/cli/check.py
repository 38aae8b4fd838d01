"""`probe check CONTRACT.toml`: every clause of a dependency contract, pass or fail, for CI.

Exit status: 0 every clause holds, 1 a clause fails, 2 a bad contract, model or data (one
line). `--write` drafts the contract from what it measures instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from probes.cli.options import model_options
from probes.cli.output import progress
from probes.results.text import table


class BadInput(click.ClickException):
    """A contract, model or data that cannot be checked: one line, exit status 2."""

    exit_code = 2


@click.command()
@click.argument("contract", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--write", is_flag=True,
              help="Draft CONTRACT from what the probe measures on the model given with "
                   "--variant, --run or --model/--data, for you to review and commit.")
@click.option("--force", is_flag=True, help="With --write: replace an existing CONTRACT.")
@model_options
def check(contract, as_json, write, force, **kw):
    """Check a dependency contract: which inputs each head must depend on, must be
    independent of, or must have no path from (a TOML file; see
    docs/how-to/test-dependencies.md). Prints every clause with its evidence; exits 0 if all
    hold, 1 if one fails, 2 on a bad contract, model or data."""
    from probes.testing import contract as pcontract

    if write:
        _write(Path(contract), force, kw)
        return
    try:
        c = pcontract.load(contract)
        rows = _check(c)
    except ValueError as err:
        raise BadInput(str(err)) from None
    holds = all(r["holds"] for r in rows)
    if as_json:
        click.echo(json.dumps({"contract": str(c.path), "holds": holds,
                               "settings": c.settings, "clauses": rows}))
    else:
        click.echo(table(["head", "input", "clause", "measured", "share [95% CI]", "result"],
                         [[r["head"], r["input"], r["clause"], r["verdict"], _share(r),
                           "pass" if r["holds"] else "FAIL"] for r in rows],
                         align="llllrl"))
        for r in rows:
            if not r["holds"]:
                click.echo(f"FAIL {r['head']} <- {r['input']}: expected {r['clause']}, "
                           f"measured {r['evidence']}")
        s = c.settings
        how = ("structural clauses only: the graph decides, nothing ran" if c.structural_only
               else f"{s['method']}, {s['samples']} samples, seed {s['seed']}, delta "
                    f"{s['delta']}, alpha {s['alpha']}")
        click.echo(f"{sum(r['holds'] for r in rows)}/{len(rows)} clauses hold ({how})")
    if not holds:
        raise SystemExit(1)


def _share(row) -> str:
    if row["share"] is None:
        return "-"
    return f"{row['share']:.3f} [{row['interval'][0]:.3f}, {row['interval'][1]:.3f}]"


def _check(c) -> list[dict]:
    """The contract's rows; a structural-only contract never loads data or weights' values."""
    from probes import testing

    model, data, labels = _source(c.model, c.settings["samples"], c.structural_only)
    return testing.check(model, data, c.expected, labels=labels, **c.settings)


def _source(spec: dict, samples: int, structural_only: bool):
    """(model, data, labels) from a contract's [model] table (data None when not needed)."""
    from mtl_models import runs
    from probes.cli.runsource import from_run
    from probes.engine.quiet import import_tensorflow
    from probes.model.sources import resolve

    import_tensorflow()
    if "path" in spec:
        src = resolve(spec["path"], None if structural_only else spec["data"],
                      unsafe=spec.get("unsafe", False),
                      custom_modules=spec.get("custom_modules", ()))
        return src.model, (None if structural_only else src.inputs), src.labels
    if "variant" in spec and structural_only:
        from mtl_models.variants import VARIANTS, build_model

        if spec["variant"] not in VARIANTS:
            raise ValueError(f"Expected a variant in {list(VARIANTS)}; received "
                             f"{spec['variant']!r}")
        return build_model(spec["variant"]), None, None  # the graph needs no trained weights
    if "run" in spec:
        run = runs.load_run(spec["run"])
    else:
        from probes.cli.select import ensure_run, variant_config

        run, _ = ensure_run(variant_config(spec["variant"], spec.get("corpus")), None)
    src = from_run(run, min(samples, run.config.n_heldout), report=progress)
    return src.model, src.inputs, src.labels


def _write(path: Path, force: bool, kw):
    """Measures the model given on the command line and drafts a contract at `path`."""
    from probes import testing
    from probes.results import atomic
    from probes.testing import contract as pcontract
    from probes.cli.select import selection

    if path.exists() and not force:
        raise BadInput(f"Expected a new file for --write; received {str(path)!r}, which "
                       "exists (--force replaces it)")
    which = selection(kw, need_data=True)
    spec = {"model_path": {"path": kw["model_path"], "data": kw["data_path"],
                           "custom_modules": list(kw["custom_modules"]),
                           "unsafe": kw["unsafe"]},
            "run_dir": {"run": kw["run_dir"]},
            "variant": {"variant": kw["variant"],
                        **({"corpus": kw["corpus"]} if kw.get("corpus") else {})}}[which]
    resolved = {k: (str(Path(v).resolve()) if k in ("path", "data", "run") else v)
                for k, v in spec.items()}
    # The contract names files relative to its own folder (as `load` reads them).
    spec = {k: (os.path.relpath(v, path.parent.resolve()) if k in ("path", "data", "run")
                else v) for k, v in resolved.items()}
    settings = dict(testing.DEFAULTS)
    try:
        model, data, labels = _source(resolved, settings["samples"], False)
        res, summary = testing.measure(model, data, labels=labels, **settings)
    except ValueError as err:
        raise BadInput(str(err)) from None
    rows = [(h, i, str(summary.verdict[a, b]), testing.evidence(res, summary, h, i))
            for a, h in enumerate(res.heads) for b, i in enumerate(res.inputs)]
    atomic.write_bytes(path, pcontract.draft(rows, spec, settings).encode())
    click.echo(f"wrote {path}: review every clause before you commit it")
