"""`probe report`: train or reuse, run every probe whose saved result is missing or stale
(probes.run.suite), write the PDF (reports.build)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mtl_models.variants import VARIANTS
from probes.cli import subjects as chosen
from probes.cli.options import cache_dir_option, comma_list, corpus_option
from probes.cli.output import fail, progress
from probes.model.sources import DEFAULT_BATCH, DEFAULT_SAMPLES, requested_samples


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), default="report.pdf", show_default=True,
              help="The PDF to write (atomically).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="The interactive web page to write [default: --out's name with .html].")
@click.option("--no-html", is_flag=True, help="Write the PDF only.")
@click.option("--variants", default="concat,separate", show_default=True,
              callback=comma_list(VARIANTS),
              help=f"Built-in variants to compare, comma-separated ({', '.join(VARIANTS)}).")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Report on run directories written by `probe train` instead (repeatable).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Report on a user's Keras model (.keras; functional, Sequential or "
                   "subclassed) instead.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="With --model: an .npz with one array per input (and per head: labels).")
@click.option("--unsafe", is_flag=True,
              help="Allow code in the model file (Lambda layers) to run. Only for files you "
                   "trust.")
@click.option("--custom-module", "custom_modules", multiple=True, metavar="MODULE",
              help="Import MODULE (a module name or a .py file) that defines the model's "
                   "custom layers; repeatable. Runs that module's code.")
@click.option("--samples", type=click.IntRange(1), default=None,
              help=f"Samples per probe [default: {DEFAULT_SAMPLES}, or all if fewer].")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH,
              show_default=True,
              help="Rows per pass; bounds memory.")
@cache_dir_option
@click.option("--png-dir", type=click.Path(file_okay=False), default=None,
              help="Also write every page as page-<k>.png here.")
@click.option("--benchmark-plot", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A PNG from benchmarks/run.py to put on the provenance page.")
@corpus_option
@click.option("--sharing", "with_sharing", is_flag=True,
              help="Add the sharing page: `probe sharing`'s default sweep (separate, tied vs "
                   "untied vs single task), reusing its cached runs and training the rest "
                   "(about 15 minutes on 2 CPU cores the first time).")
@click.option("--sharing-result", type=click.Path(exists=True), default=None,
              help="Add the sharing page from a saved sharing.json (or its folder) instead.")
def report(out, html_path, no_html, variants, run_dirs, model_path, data_path, unsafe,
           custom_modules, samples, seed, batch_size, cache_dir, png_dir, benchmark_plot, corpus,
           with_sharing, sharing_result):
    """Answer the question with evidence, as a PDF: train (or reuse) the variants (or take a
    user's model and data), run every probe whose result is not saved yet, and write the
    pages: the answer, the models' graphs, accuracy against references (or the labels' loss
    changes), every probe's matrix with intervals, profiles along each input, the shared
    weights, the concatenation, and method and provenance. Every page covers each model's own
    heads and inputs; one with nothing to show for a model says why. The same results go to
    an interactive web page beside the PDF (report.html: one offline file)."""
    started = time.perf_counter()
    if data_path and not model_path:
        raise click.UsageError("Expected --data only with --model; received --data alone")
    if model_path and not data_path:
        raise click.UsageError("Expected --data FILE.npz with --model; received none")
    out = Path(out)
    if html_path and no_html:
        raise click.UsageError("Expected --html PATH or --no-html; received both")
    html = None if no_html else Path(html_path) if html_path else out.with_suffix(".html")
    if html is not None and not html.parent.is_dir():
        fail(ValueError(f"Expected an existing directory for --html; received {html.parent}"))
    if not out.parent.is_dir():
        fail(ValueError(f"Expected an existing directory for --out; received {out.parent}"))
    if with_sharing and sharing_result:
        raise click.UsageError("Expected --sharing or --sharing-result; received both")
    shared_worth = chosen.sharing_worth(with_sharing, sharing_result, cache_dir)
    if corpus and (run_dirs or model_path):
        raise click.UsageError("Expected --corpus with built-in variants; received it with "
                               f"--{'run' if run_dirs else 'model'}")
    stages = {}
    at = time.perf_counter()
    subjects = chosen.subjects(variants, run_dirs, model_path, data_path, unsafe,
                               custom_modules, out, cache_dir, samples, corpus)
    stages["models (training or loading)"] = time.perf_counter() - at
    try:  # the fewest any model has
        n = min(requested_samples(samples, available, name)
                for name, _, _, available in subjects)
    except ValueError as err:
        fail(err)
    at = time.perf_counter()
    for name, directory, make_source, _ in subjects:
        chosen.complete(name, Path(directory), make_source, n, seed, batch_size)
    stages["probes"] = time.perf_counter() - at
    from probes.run.suite import REPORT_PROBES, stage_times
    from reports.build import build

    progress("writing the report ...")
    at = time.perf_counter()
    try:
        path = build([d for _, d, _, _ in subjects], out, probe_names=list(REPORT_PROBES),
                     samples=n, seed=seed, png_dir=png_dir, benchmark_png=benchmark_plot,
                     sharing=shared_worth, html=html, progress=progress)
    except (ValueError, OSError) as err:
        fail(err if isinstance(err, ValueError) else
             ValueError(f"Expected a writable --out; received {out}: {err}"))
    stages["writing"] = time.perf_counter() - at
    progress(f"stages: {stage_times(stages)}")
    click.echo(f"wrote {path} ({time.perf_counter() - started:.0f} s)")
