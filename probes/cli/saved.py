"""Running a registered probe for a command and saving its result beside its fingerprint."""

from __future__ import annotations

from probes.cli.guard import deferred_interrupt, writable_dir
from probes.cli.output import fail, progress


def run_probe(src, name, seed, params, shard=None, fanout=None):
    """(result, fingerprint) of a registered probe on a source (of shard (K, N) of its samples
    with `shard`; its shards run on Ray with `fanout`: probes.cli.fanout); errors end the
    command."""
    from probes.engine import backends
    from probes.run import suite
    from probes.engine.forward import op_message

    try:
        if shard:  # a partial result: statistics come after the merge
            return suite.run_shard(src, name, dict(params, seed=seed), shard)
        if fanout:  # the same result and fingerprint as the plain run
            from probes.cli.fanout import run_on_ray

            res, fp = run_on_ray(src, name, dict(params, seed=seed), fanout)
        else:
            res, fp = suite.run(src, name, dict(params, seed=seed))
        if name.startswith(("ablation/", "attribution/")):
            res.summary()  # a result the statistics refuse fails here, not later
        return res, fp
    except ValueError as err:
        fail(err)
    except backends.get().errors() as err:  # a model that fails on the user's data
        fail(ValueError(f"Expected inputs the model can run on; received an error from the "
                        f"model: {op_message(err)}"))


def saved_results(src, plan, samples, seed, out_dir, shard=None, fanout=None) -> dict:
    """Runs each (probe, params) of `plan` on a source (shard (K, N) of its samples with
    `shard`) and saves it with its fingerprint in --out, else the run's probes/ (nothing for
    --model without --out): {probe: result}."""
    from probes.results import filenames
    from probes.run import suite

    target = out_dir or (src.run_dir / "probes" if src.run_dir else None)
    if target:
        target = writable_dir(target, "--out")
    out = {}
    for name, params in plan:
        res, fp = run_probe(src, name, seed, params, shard, fanout)
        out[name] = res
        if not target:
            continue
        try:  # a .npz and .json pair, never one without the other
            with deferred_interrupt():
                path = suite.save(res, target, filenames.stem(name, samples, seed, shard), fp)
        except OSError as err:
            fail(ValueError(f"Expected a writable --out directory; received {target}: "
                            f"{err.strerror}"))
        progress(f"saved {path}")
    return out
