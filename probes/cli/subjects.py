"""The models a report covers (built-in variants, runs, or a user's model and data), bringing
each one's saved results up to date, and the sharing sweep it may show."""

from __future__ import annotations

from pathlib import Path

from mtl_models import runs
from probes.cli.output import fail, progress
from probes.cli.select import ensure_run, variant_config


def subjects(variants, run_dirs, model_path, data_path, unsafe, custom_modules, out, cache_dir,
              samples, corpus=None):
    """(name, directory, source factory(samples), samples available) per model."""
    from probes.model import sources
    from probes.cli.runsource import from_run

    chosen = []
    if model_path:
        from probes.engine.quiet import import_tensorflow
        from probes.results import atomic

        import_tensorflow()
        try:
            src = sources.resolve(model_path, data_path, samples=samples,
                                  default_samples=sources.DEFAULT_SAMPLES, what="--samples",
                                  unsafe=unsafe, custom_modules=custom_modules)
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
        loaded = [ensure_run(variant_config(v, corpus), cache_dir)[0] for v in variants]
    for run in loaded:
        chosen.append((run.config.variant, run.path,
                       lambda k, run=run: from_run(run, k), run.config.n_heldout))
    return chosen


def complete(name, directory: Path, make_source, n: int, seed: int, batch_size: int):
    """Brings `directory`/probes up to date for this model, data, sample count and seed."""
    from probes.engine.quiet import import_tensorflow

    import_tensorflow()
    from probes.engine import backends
    from probes.engine.forward import op_message
    from probes.run.suite import complete

    try:
        complete(make_source(n), directory / "probes", samples=n, seed=seed,
                 batch_size=batch_size, report=progress)
    except ValueError as err:
        fail(err)
    except backends.get().errors() as err:  # a model that fails on the user's data
        fail(ValueError(f"{name}: Expected inputs the model can run on; received an error "
                        f"from the model: {op_message(err)}"))


def sharing_worth(with_sharing: bool, sharing_result, cache_dir):
    """The SharingResult to show, or None: a saved one, or the default sweep (run now, from
    cached runs where they exist, and saved beside them)."""
    from probes.results import transfer

    if sharing_result:
        try:
            return transfer.load(sharing_result)
        except ValueError as err:
            fail(err)
    if not with_sharing:
        return None
    from probes.cli.sharing import run_sweep, sharing

    kw = sharing.make_context("sharing", []).params  # the command's defaults
    result, folder = run_sweep(dict(kw, cache_dir=cache_dir))
    result.save(folder)
    return result
