"""`probe report`: train or reuse, run every probe not saved yet, write the PDF."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from mtl_models import runs
from mtl_models.variants import VARIANTS
from probes.cli.common import ensure_run, fail, probe_rng, progress

# What the report shows, with the parameters each probe runs with.
REPORT_PROBES = {
    "ablation/shuffle": {"permutations": 8},
    "ablation/zero": {},
    "ablation/occlusion": {},
    "attribution/saliency": {},
    # Fixed steps: the report shows the completeness gap reached rather than doubling.
    # 8 Gauss-Legendre nodes: at full size the median gap is 1e-5 on separate, and on
    # concat (which does not converge) 0.015, against 0.046 with 16 nodes; half the cost.
    "attribution/integrated_gradients": {"baseline": "shuffle", "steps": 8},
}
# What the report can go without when a model does not allow it (the probe raises ValueError:
# no labels, no shared weights, no time axis, no gradient): recorded with the reason, shown on
# its page. The shuffle and zero ablations apply to every model.
OPTIONAL = ("ablation/occlusion", "attribution/saliency", "attribution/integrated_gradients",
            "shared", "paths")


def _variants(ctx, param, value):
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise click.BadParameter(f"expected a comma-separated list of {', '.join(VARIANTS)}; "
                                 f"received {value!r}")
    return names


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), default="report.pdf", show_default=True,
              help="The PDF to write (atomically).")
@click.option("--variants", default="concat,separate", show_default=True, callback=_variants,
              help=f"Built-in variants to compare, comma-separated ({', '.join(VARIANTS)}).")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Report on run directories written by `probe train` instead (repeatable).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Report on a user's functional Keras model (.keras) instead.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="With --model: an .npz with one array per input (and per head: labels).")
@click.option("--unsafe", is_flag=True,
              help="Allow code in the model file (Lambda layers) to run. Only for files you "
                   "trust.")
@click.option("--custom-module", "custom_modules", multiple=True, metavar="MODULE",
              help="Import MODULE (a module name or a .py file) that defines the model's "
                   "custom layers; repeatable. Runs that module's code.")
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Samples per probe [default: 256, or all if fewer].")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
              help="Rows per pass; bounds memory.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Run cache [default: $MTL_PROBE_CACHE or ~/.cache/mtl-probe].")
@click.option("--png-dir", type=click.Path(file_okay=False), default=None,
              help="Also write every page as page-<k>.png here.")
@click.option("--benchmark-plot", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A PNG from benchmarks/run.py to put on the provenance page.")
def report(out, variants, run_dirs, model_path, data_path, unsafe, custom_modules, samples, seed,
           batch_size, cache_dir, png_dir, benchmark_plot):
    """Answer the question with evidence, as a PDF: train (or reuse) the variants (or take a
    user's model and data), run every probe whose result is not saved yet, and write the
    pages: the answer, the models' graphs, accuracy against references (or the labels' loss
    changes), every probe's matrix with intervals, profiles along each input, the shared
    weights, the concatenation, and method and provenance. Every page covers each model's own
    heads and inputs; one with nothing to show for a model says why."""
    started = time.perf_counter()
    if data_path and not model_path:
        raise click.UsageError("Expected --data only with --model; received --data alone")
    if model_path and not data_path:
        raise click.UsageError("Expected --data FILE.npz with --model; received none")
    out = Path(out)
    if not out.parent.is_dir():
        fail(ValueError(f"Expected an existing directory for --out; received {out.parent}"))
    subjects = _subjects(variants, run_dirs, model_path, data_path, unsafe, custom_modules, out,
                         cache_dir, samples)
    n = None
    for name, directory, make_source, available in subjects:
        n_here = min(samples or 256, available)
        if samples and samples > available:
            fail(ValueError(f"Expected --samples <= {available}, the samples of {name}; "
                            f"received {samples}"))
        n = n_here if n is None else min(n, n_here)
    for name, directory, make_source, _ in subjects:
        _complete(name, Path(directory), make_source, n, seed, batch_size)
    from reports.build import build

    progress("writing the report ...")
    try:
        path = build([d for _, d, _, _ in subjects], out, probe_names=list(REPORT_PROBES),
                     samples=n, seed=seed, png_dir=png_dir, benchmark_png=benchmark_plot,
                     progress=progress)
    except (ValueError, OSError) as err:
        fail(err if isinstance(err, ValueError) else
             ValueError(f"Expected a writable --out; received {out}: {err}"))
    click.echo(f"wrote {path} ({time.perf_counter() - started:.0f} s)")


def _subjects(variants, run_dirs, model_path, data_path, unsafe, custom_modules, out, cache_dir,
              samples):
    """(name, directory, source factory(samples), samples available) per model."""
    from probes import sources

    chosen = []
    if model_path:
        from mtl_models import atomic
        from mtl_models.quiet import import_tensorflow

        import_tensorflow()
        try:
            src = sources.from_files(model_path, data_path, samples, unsafe, custom_modules)
        except ValueError as err:
            fail(err)
        for note in src.notes:
            progress(note)
        directory = out.with_name(out.stem + "-results")
        directory.mkdir(exist_ok=True)
        atomic.write_json(directory / "subject.json", {"name": str(model_path)})
        n = len(next(iter(src.inputs.values())))
        chosen.append((str(model_path), directory, lambda k: src, n))
        return chosen
    if run_dirs:
        loaded = []
        for d in run_dirs:
            try:
                loaded.append(runs.load_run(d))
            except ValueError as err:
                fail(err)
    else:
        loaded = [ensure_run(runs.TrainConfig(variant=v), cache_dir)[0] for v in variants]
    for run in loaded:
        chosen.append((run.config.variant, run.path,
                       lambda k, run=run: sources.from_run(run, k), run.config.n_heldout))
    return chosen


def _complete(name, directory: Path, make_source, n: int, seed: int, batch_size: int):
    """Runs and saves every report probe missing from `directory`/probes; one that does not
    apply to the model (OPTIONAL) is recorded with its reason in skipped-n<N>-seed<S>.json,
    which the pages show."""
    from mtl_models import atomic
    from probes import result as presult

    target = directory / "probes"
    suffix = f"-n{n}-seed{seed}"
    timings_path = target / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    skipped_path = target / f"skipped{suffix}.json"
    skipped = json.loads(skipped_path.read_text()) if skipped_path.is_file() else {}
    missing = [p for p in REPORT_PROBES if p not in skipped
               and not (target / f"{p.replace('/', '-')}{suffix}.json").is_file()]
    extra = [k for k in ("shared", "paths", "structure") if k not in skipped
             and not (target / (f"{k}{suffix}.json" if k != "structure" else
                                "structure.json")).is_file()]
    if not missing and not extra:
        progress(f"[{name}] every result is saved: nothing to compute")
        return
    from mtl_models.quiet import import_tensorflow

    tf = import_tensorflow()
    from probes import stats
    from probes.cli.paths import paths_record
    from probes.cli.shared import shared_record
    from probes.forward import op_message
    from probes.graph import structure
    from probes.registry import PROBES

    src = make_source(n)
    target.mkdir(parents=True, exist_ok=True)
    for k, probe in enumerate(missing + extra, 1):
        progress(f"[{name}] {k}/{len(missing) + len(extra)} {probe} on {n} samples ...")
        t = time.perf_counter()
        try:
            if probe == "structure":
                atomic.write_json(target / "structure.json", structure(src.model).to_json())
            elif probe in ("shared", "paths"):
                if probe == "shared":  # mini-batches of 64, or one of all the samples if fewer
                    saved = shared_record(src, seed=seed, batch_size=batch_size,
                                          minibatch=min(64, n))[0]
                else:
                    saved = paths_record(src, seed=seed, batch_size=batch_size)[0]
                atomic.write_json(target / f"{probe}{suffix}.json", saved)
            else:
                kwargs = dict(REPORT_PROBES[probe], rng=probe_rng(seed), seed=seed,
                              model_name=src.name, batch_size=batch_size)
                if probe.startswith("ablation/"):
                    kwargs["labels"] = src.labels
                res = PROBES[probe](src.model, src.inputs, **kwargs)
                stats.summarize(res)  # refuse a result the report could not summarise
                presult.save(res, target, stem=f"{res.name}{suffix}")
        except ValueError as err:
            if probe not in OPTIONAL:
                fail(ValueError(f"{name}: {err}"))
            # e.g. no labels, no shared weights, no gradient: the page says why
            progress(f"[{name}] not shown: {probe}: {err}")
            skipped[probe] = str(err)
            atomic.write_json(skipped_path, skipped)
            continue
        except tf.errors.OpError as err:  # a model that fails on the user's data
            fail(ValueError(f"{name}: Expected inputs the model can run on; received an error "
                            f"from the model in {probe}: {op_message(err)}"))
        timings[probe] = time.perf_counter() - t
        atomic.write_json(timings_path, timings)
