"""The report's probes on one model, saved in its results folder; never stale, never redone.

`complete` runs every probe the report shows on a source (a model, its inputs and labels) and
saves each result with the fingerprint of what it was computed from (probes.results.store): a result
whose model, data, probe, parameters or samples changed is recomputed, and an unchanged one is
reused without running anything. A probe that does not apply to the model (no labels, no shared
weights, no time axis, no gradient) is recorded with its reason, judged on the same
fingerprint, so a changed model is judged again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from probes.methods.method_maps import SETTINGS
from probes.results import atomic, filenames, store
from probes.results.fingerprint import combine, data_fingerprint, fingerprint, model_fingerprint
from probes.results.seeds import probe_generator

# What the report shows, with the parameters each probe runs with (besides --batch-size).
REPORT_PROBES = {
    "ablation/shuffle": {"permutations": 8},
    "ablation/zero": {},
    "ablation/occlusion": {},
    "attribution/saliency": {},
    # Fixed steps: the report shows the completeness gap reached rather than doubling.
    # 8 Gauss-Legendre nodes: at full size the median gap is 1e-5 on separate, and on
    # concat (which does not converge) 0.015, against 0.046 with 16 nodes; half the cost.
    # With maps: the coloured-text page shows every character's attribution.
    "attribution/integrated_gradients": {"baseline": "shuffle", "steps": 8, "maps": True},
    "shared/agreement": {"batch_size": None},  # mini-batches of 64, or one of all if fewer
    "shared/coupling": {},
    "paths/decomposition": {},
    "paths/interaction": {},
    # Faithfulness and sanity on the first 32 samples, sanity with the methods its acceptance
    # names plus the control: at full size on 256 samples they took 195 s and minutes more
    # per variant (the curves' medians over 32 samples and the verdicts as on 64:
    # docs/explanation/probes.md).
    # Their methods' settings named, so that the fingerprint covers them.
    "faithfulness": {"first": 32, "settings": SETTINGS},
    "sanity": {"first": 32, "methods": ["saliency", "integrated_gradients", "input"],
               "settings": SETTINGS},
    "structure": {},
}
# What the report can go without when a model does not allow it (the probe raises ValueError):
# recorded with the reason and shown on its page. The shuffle and zero ablations apply to
# every model, and so does the structure.
REQUIRED = ("ablation/shuffle", "ablation/zero", "structure")


def params_of(probe: str, batch_size: int) -> dict:
    """The parameters `probe` runs with in the report, besides the seed (the fingerprint
    covers both)."""
    return {"batch_size": batch_size, **REPORT_PROBES[probe]}


def _labels(src, probe: str):
    """The source's labels for the probes that use them (the losses), else None."""
    return src.labels if probe.startswith(("ablation/", "shared/")) else None


def compute(src, probe: str, params: dict):
    """The result of registered `probe` on a source with `params` (seed included; the random
    stream is the probe family's, probes.results.seeds)."""
    from probes.run.registry import PROBES

    params = dict(params)
    seed = params.pop("seed", 0)
    rng = probe_generator(probe, seed)
    return PROBES[probe](src.model, src.inputs, rng=rng, labels=_labels(src, probe), seed=seed,
                         model_name=src.name, **params)


def fingerprint_of(src, probe: str, params: dict) -> dict:
    """The fingerprint of registered `probe` on a source with `params` (seed included)."""
    return fingerprint(src.model, src.inputs, probe, params, labels=_labels(src, probe))


def run(src, probe: str, params: dict):
    """(result, fingerprint) of registered `probe` on a source with `params`."""
    return compute(src, probe, params), fingerprint_of(src, probe, params)


def run_shard(src, probe: str, params: dict, shard):
    """(partial result, fingerprint) of shard `shard` ("K/N") of registered per-sample `probe`
    on a source with `params` (seed included): probes.run.shards.run_shard, with the fingerprint
    of the whole run narrowed to the shard's samples."""
    from probes.run import shards

    params = dict(params)
    seed = params.pop("seed", 0)
    res = shards.run_shard(probe, src.model, src.inputs, shard=shard, labels=_labels(src, probe),
                           seed=seed, model_name=src.name, **params)
    fp = fingerprint_of(src, probe, dict(params, seed=seed))
    return res, shards.shard_fingerprint(fp, res.sample_ids)


def run_on_ray(src, probe: str, params: dict, **options):
    """(result, fingerprint) of registered per-sample `probe` on a source with `params` (seed
    included), its shards run as Ray tasks and merged (probes.run.fanout.run_on_ray, `options`):
    the same as `run`'s."""
    from probes.run import fanout

    params = dict(params)
    seed = params.pop("seed", 0)
    res = fanout.run_on_ray(probe, src.model, src.inputs, labels=_labels(src, probe), seed=seed,
                            model_name=src.name, params=params, **options)
    return res, fingerprint_of(src, probe, dict(params, seed=seed))


def save(result, directory, stem: str, fp: dict):
    """Saves a result with its fingerprint and records it in the folder's manifest."""
    from probes.results import resultio

    path = resultio.save(result, directory, stem, fingerprint=fp)
    store.record(directory, stem, result, fp)
    return path


def complete(src, directory, *, samples: int, seed: int, batch_size: int = 256,
             report=lambda line: None) -> dict:
    """Runs and saves every report probe whose saved result is missing or stale.

    Args:
        src: a probes.model.sources.Source (model, name, inputs, labels) of `samples` rows.
        directory: the results folder (created).
    Returns:
        {"computed": [probe...], "reused": [probe...], "skipped": {probe: reason}}.
    Raises:
        ValueError: a required probe failed (the model cannot run on the data...).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    skipped_path = directory / filenames.skipped(samples, seed)
    skipped = _read(skipped_path)
    timings = _read(directory / filenames.TIMINGS)
    done = {"computed": [], "reused": [], "skipped": {}}
    names = list(REPORT_PROBES)
    # The model's and the data's digests, hashed once for every probe.
    model_fp = model_fingerprint(src.model)
    data_fp = {labelled: data_fingerprint(src.inputs, src.labels if labelled else None)
               for labelled in (False, True)}
    for k, probe in enumerate(names, 1):
        params = dict(params_of(probe, batch_size), seed=seed)
        fp = combine(model_fp, data_fp[_labels(src, probe) is not None], probe, params)
        old = skipped.get(probe)
        if old is not None and old.get("key") == fp["key"]:
            done["skipped"][probe] = old["reason"]
            continue
        stem = filenames.stem(probe, None if probe == "structure" else samples, seed)
        started = time.perf_counter()

        def announced(probe=probe, params=params, k=k):
            report(f"[{src.name}] {k}/{len(names)} {probe} on {samples} samples ...")
            return compute(src, probe, params)

        try:
            _, reused = store.cached(directory, stem, fp, announced, report=report)
        except ValueError as err:
            if probe in REQUIRED:
                raise ValueError(f"{src.name}: {err}") from None
            report(f"[{src.name}] not shown: {probe}: {err}")
            skipped[probe] = {"reason": str(err), "key": fp["key"]}
            atomic.write_json(skipped_path, skipped)
            done["skipped"][probe] = str(err)
            continue
        skipped.pop(probe, None)
        atomic.write_json(skipped_path, skipped)
        done["reused" if reused else "computed"].append(probe)
        if not reused:
            timings[probe] = time.perf_counter() - started
            atomic.write_json(directory / filenames.TIMINGS, timings)
    if not done["computed"]:
        report(f"[{src.name}] every result is saved and current: nothing to compute")
    else:
        report(f"[{src.name}] {stage_times({p: timings[p] for p in done['computed']})}")
    return done


def stage_times(seconds: dict) -> str:
    """'N s: a 3.1 s, b 1.2 s, ...': the total and each stage, the longest first."""
    parts = ", ".join(f"{name} {s:.1f} s" for name, s in
                      sorted(seconds.items(), key=lambda kv: -kv[1]))
    return f"{sum(seconds.values()):.1f} s: {parts}"


def _read(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"Expected a readable JSON file at {path}; received {err}") from None
