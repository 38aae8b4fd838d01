"""One per-sample probe split into shards (processes, machines, Ray tasks) and merged back.

A shard is a contiguous block of the samples. Shard k of n computes only its own samples, but
with every sample as the background (the shuffle's donors, the mean baseline), with the random
draws of the full run's stream (drawn for all samples, so they do not depend on the shard), and
in the passes a run over all samples would use (probes.engine.forward.layout): its rows equal the
full run's bit for bit. `merge` puts the blocks back in sample order and derives what needs
every sample (integrated gradients' median completeness gap, the unreliable cells), so the
merged result equals the unsharded run's exactly, params included. Statistics (intervals,
tests, verdicts) are derived from the merged result, never from a shard.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from probes.model.lazy import rows_of
from probes.results import fingerprint as fpr
from probes.results.result import ProbeResult

# The probes whose results are per-sample rows.
FAMILIES = ("ablation", "attribution", "faithfulness", "sanity")
# The per-sample arrays of the results that are not ProbeResults, and their sample axis.
SAMPLE_AXES = {"Faithfulness": {"deletion": 3, "insertion": 3, "full": 1, "empty": 2},
               "Sanity": {"correlation": 4}}
# Params derived from every sample: recomputed by `merge`, not compared between shards.
DERIVED = ("shard", "median_gap", "converged", "samples_over_5pct", "unreliable")


def parse(text) -> tuple[int, int]:
    """"K/N" (or a (K, N) pair) -> (K, N), shard K of N counted from 1."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        k, n = (int(v) for v in text)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not match:
            raise ValueError(f"Expected a shard K/N such as 2/4; received {text!r}")
        k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ValueError(f"Expected a shard K/N with 1 <= K <= N; received {k}/{n}")
    return k, n


def check(probe: str, params: dict) -> None:
    """Raises ValueError unless registered `probe` with `params` can be split into shards."""
    from probes.run.registry import PROBES

    if probe not in PROBES or probe.split("/")[0] not in FAMILIES:
        names = ", ".join(sorted(p for p in PROBES if p.split("/")[0] in FAMILIES))
        raise ValueError(f"Expected a per-sample probe ({names}) to shard; received "
                         f"{probe!r}")
    taken = sorted({"background", "sample_ids"} & set(params))
    if taken:
        raise ValueError(f"Expected no {' or '.join(taken)} with a shard (the shard uses every "
                         f"sample as background); received {taken}")
    if probe == "attribution/integrated_gradients" and not params.get("steps"):
        raise ValueError("Expected a fixed number of steps for integrated gradients in a shard "
                         "(--steps; the automatic count is chosen on every sample); received "
                         "none")


def rows(total: int, k: int, n: int) -> np.ndarray:
    """The samples of shard k of n: the k-th of n contiguous near-equal blocks of 0..total-1."""
    if n > total:
        raise ValueError(f"Expected at most {total} shards, one per sample; received {n}")
    return np.array_split(np.arange(total), n)[k - 1]


def run_shard(probe: str, model, inputs: dict, *, shard, labels=None, seed: int = 0,
              model_name: str | None = None, **params):
    """Registered per-sample `probe` on shard `shard` ("K/N" or (K, N)) of the samples.

    Args:
        inputs: {input name: (N, ...) array or lazy input}: every sample (the background).
        labels: {head name: (N, ...)} for every sample, or None.
        params: the probe's parameters, as for the unsharded run (not background or
            sample_ids: the shard sets them).
    Returns:
        The shard's partial result (the probe's type): rows of its samples, params["shard"] =
        {"index", "count", "samples"} (the total). Merge the shards with `merge`.
    """
    from probes.run.registry import PROBES
    from probes.results.seeds import probe_generator

    k, n = parse(shard)
    check(probe, params)
    total = len(next(iter(inputs.values())))
    ids = rows(total, k, n)
    part = slice(int(ids[0]), int(ids[-1]) + 1)
    sub = {name: rows_of(x, part) for name, x in inputs.items()}
    sub_labels = None if labels is None else {h: np.asarray(y)[part] for h, y in labels.items()}
    res = PROBES[probe](model, sub, rng=probe_generator(probe, seed), labels=sub_labels, seed=seed,
                        model_name=model_name, background=inputs, sample_ids=ids, **params)
    return dataclasses.replace(res, params={**res.params, "shard": {
        "index": k, "count": n, "samples": total}})


def merge(parts):
    """The full result (a ProbeResult, Faithfulness or Sanity) from the partial results of
    shards 1..N of one run.

    Raises:
        ValueError: a part is not a shard, the parts differ in probe, model, inputs or
            parameters, or some sample is missing or covered twice (one line naming it).
    """
    parts = list(parts)
    if not parts:
        raise ValueError("Expected the partial results of every shard; received none")
    for p in parts:
        if not isinstance(getattr(p, "params", {}).get("shard"), dict):
            raise ValueError(f"Expected partial results of --shard runs; received a complete "
                             f"{_name(p)} result of {_model(p)}")
    first = parts[0]
    count, total = first.params["shard"]["count"], first.params["shard"]["samples"]
    for p in parts[1:]:
        _same_run(first, p, count, total)
    ids = np.concatenate([p.sample_ids for p in parts])
    covered = np.bincount(ids, minlength=total)
    missing, doubled = np.flatnonzero(covered == 0), np.flatnonzero(covered > 1)
    if len(missing) or len(doubled):
        have = sorted(p.params["shard"]["index"] for p in parts)
        what = (f"no result for samples {_spans(missing)}" if len(missing)
                else f"samples {_spans(doubled)} more than once")
        raise ValueError(f"Expected every sample 0..{total - 1} once, from shards 1..{count}; "
                         f"received {what} (shards given: {', '.join(map(str, have))})")
    order = np.argsort(ids, kind="stable")

    def cat(field, axis):
        values = [getattr(p, field) for p in parts]
        if values[0] is None:
            return None
        return np.take(np.concatenate(values, axis=axis), order, axis=axis)

    axes = SAMPLE_AXES.get(type(first).__name__)
    if axes is not None:
        merged = dataclasses.replace(first, sample_ids=ids[order],
                                     **{f: cat(f, axis) for f, axis in axes.items()})
        return dataclasses.replace(merged, params={k: v for k, v in first.params.items()
                                                   if k != "shard"})
    maps = None
    if first.maps is not None:
        maps = tuple(np.take(np.concatenate([p.maps[i] for p in parts], axis=1), order, axis=1)
                     for i in range(len(first.maps)))
    merged = dataclasses.replace(
        first, effects=cat("effects", 2), sample_ids=ids[order],
        loss_effects=cat("loss_effects", 2), profile=cat("profile", 2),
        signed=cat("signed", 2), completeness_gap=cat("completeness_gap", 1), maps=maps)
    return dataclasses.replace(merged, params=_derived(merged, parts))


def _same_run(first, p, count: int, total: int) -> None:
    """Raises unless `p` is another shard of `first`'s run."""
    info = p.params["shard"]
    checks = [("shard count", info["count"], count), ("sample count", info["samples"], total),
              ("probe", _name(p), _name(first)), ("model", _model(p), _model(first)),
              ("heads", p.heads, first.heads), ("inputs", p.inputs, first.inputs)]
    mine, theirs = _fixed(p.params), _fixed(first.params)
    checks += [(f"parameter {key}", mine.get(key), theirs.get(key))
               for key in sorted(set(mine) | set(theirs)) if mine.get(key) != theirs.get(key)]
    for what, got, want in checks:
        if got != want:
            raise ValueError(f"Expected shards of one run (the same {what}); received shard "
                             f"{info['index']}/{info['count']} with {what} {got!r}, not "
                             f"{want!r}")
    axes = SAMPLE_AXES.get(type(first).__name__)
    same = ([f.name for f in dataclasses.fields(first) if f.name not in axes
             and f.name not in ("heads", "inputs", "params", "sample_ids")] if axes
            else ["structural", "profile_starts"])  # the rest of a ProbeResult is per sample
    for field in same:
        a, b = getattr(p, field), getattr(first, field)
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            equal = a is not None and b is not None and np.array_equal(a, b)
        else:
            equal = a == b
        if not equal:
            raise ValueError(f"Expected shards of one run (the same {field}); received shard "
                             f"{info['index']}/{info['count']} with another")


def _name(result) -> str:
    """The probe of a result: a ProbeResult's name, else its type's (faithfulness, sanity)."""
    return getattr(result, "name", type(result).__name__.lower())


def _model(result) -> str:
    return getattr(result, "model", None) or getattr(result, "params", {}).get("model")


def _fixed(params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in DERIVED}


def _derived(merged: ProbeResult, parts) -> dict:
    """The params of the unsharded run: the shard's, without "shard", with what needs every
    sample recomputed as `probes.methods.attribution.attribute` computes it."""
    params = {k: v for k, v in parts[0].params.items() if k != "shard"}
    gaps = merged.completeness_gap
    if gaps is not None and "median_gap" in params:
        params.update(median_gap=float(np.median(gaps)),
                      converged=bool(np.median(gaps) < params["tolerance"]),
                      samples_over_5pct=int(np.sum(gaps > 0.05)))
    if "unreliable" in params:
        # A cell is unreliable when its attributions are 0 on every sample and the head moves
        # when the input is zeroed on some sample: such a cell is silent in every shard, so
        # every shard tested it, and a shard where the head moved listed it.
        listed = {(u["head"], u["input"]): u for p in parts for u in p.params["unreliable"]}
        params["unreliable"] = [
            listed[merged.heads[r], merged.inputs[i]]
            for r, i in zip(*np.nonzero(merged.structural))
            if not np.any(merged.effects[r, i]) and (merged.heads[r], merged.inputs[i]) in listed]
    return params


def _spans(ids: np.ndarray) -> str:
    """"3, 10-19" for sorted sample ids (at most five spans, then how many more)."""
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    spans = [f"{s[0]}" if len(s) == 1 else f"{s[0]}-{s[-1]}" for s in np.split(ids, breaks)]
    return ", ".join(spans[:5]) + (f" and {len(spans) - 5} more spans" if len(spans) > 5 else "")


def shard_fingerprint(full: dict, sample_ids) -> dict:
    """A shard's fingerprint: the full run's (model, data of every sample, probe and params)
    with its own samples."""
    return fpr.with_samples(full, sample_ids)


def merged_fingerprint(fingerprints: list[dict]) -> dict:
    """The unsharded run's fingerprint from its shards' (which must agree on model, data and
    probe)."""
    first = fingerprints[0]
    for fp in fingerprints[1:]:
        changed = [k for k in ("model", "data", "probe") if fp.get(k) != first.get(k)]
        if changed:
            raise ValueError(f"Expected shards computed from the same model, data and probe "
                             f"parameters; received shards whose {', '.join(changed)} differ")
    return fpr.with_samples(first, None)


def shard_files(parts) -> dict[str, list]:
    """{unsharded stem: its shards' .json files} from `parts`, each a shard's results folder
    or one shard's .json file (`probe merge`'s arguments).

    Raises:
        ValueError: a part holding no shard result (<stem>-shard<K>of<N>.json).
    """
    from pathlib import Path

    from probes.results import filenames

    groups: dict[str, list] = {}
    for part in map(Path, parts):
        found = sorted(part.glob("*-shard*of*.json")) if part.is_dir() else [part]
        found = [f for f in found if filenames.unsharded(f.stem)]
        if not found:
            raise ValueError(f"Expected shard results (<stem>-shard<K>of<N>.json) in {part}; "
                             "received none")
        for f in found:
            groups.setdefault(filenames.unsharded(f.stem), []).append(f)
    return groups


def merge_files(files) -> tuple[object, dict | None]:
    """(the merged result, its fingerprint or None if a shard was saved without one) from the
    saved shards of one run (ValueError unless they make the whole run: `merge`)."""
    from probes.results import resultio

    results = [resultio.load(f) for f in files]
    prints = [resultio.read_meta(f).get("fingerprint") for f in files]
    merged = merge(results)
    return merged, (None if None in prints else merged_fingerprint(prints))
