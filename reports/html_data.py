"""The web page's data: one JSON-ready dict built from the same Subject objects (and the same
summaries, pairs and curves) as the PDF's pages, embedded in the page as
<script type="application/json" id="report-data">. Nothing is computed here that the pages do
not compute; no TensorFlow, no plotting."""

from __future__ import annotations

import base64
import math

import numpy as np

from reports.layout import MAIN
from reports.pages_answer import node_label, graph_layout, answer_text
from reports.pages_paths import methods_text
from reports.pages_text import PAD, PROBE as TEXT_PROBE, choose

SUMMARY_FIELDS = ("effect", "ci_low", "ci_high", "share", "share_ci_low", "share_ci_high",
                  "p_value", "verdict")


def _num(x):
    """A JSON number, or None for NaN and infinities (JSON has neither)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _grid(a) -> list:
    """An array as nested lists of JSON values (numbers, None for NaN, strings, booleans)."""
    a = np.asarray(a)
    if a.dtype.kind in "fc":
        return np.vectorize(_num, otypes=[object])(a).tolist() if a.size else a.tolist()
    return a.tolist()


def _f16(values) -> str:
    """Little-endian float16 bytes as base64: the page decodes them (colours need no more)."""
    return base64.b64encode(np.asarray(values, "<f2").tobytes()).decode("ascii")


def probe_data(res, summ) -> dict:
    """One probe's matrix: every summary field (H, I) and the per-sample effects (H, I, N)."""
    out = {f: _grid(getattr(summ, f)) for f in SUMMARY_FIELDS}
    out["effects"] = _grid(res.effects)
    out["samples"] = res.samples
    out["settings"] = summ.settings
    out["params"] = {k: v for k, v in res.params.items() if not isinstance(v, (list, dict))}
    return out


def text_data(subjects) -> dict | None:
    """Coloured text of every probed pair of every subject with saved characters: per
    subject, the characters and, per method with maps, per head and pair, the top |value|
    (the PDF's scale) and each input's values / top as float16 (base64)."""
    usable = [s for s in subjects if s.texts is not None and any(
        res.maps is not None for res, _ in s.results.values())]
    if not usable:
        return None
    picks, rule = choose(usable) if any(TEXT_PROBE in s.results for s in usable) else ([], "")
    out = {"rule": rule, "first": picks, "subjects": {}}
    for s in usable:
        chars = {name: ["".join(chr(c) if 32 <= c < 127 else "\u00b7" for c in row[row != PAD])
                        for row in codes] for name, codes in s.texts.items()}
        methods = {}
        for name, (res, _) in s.results.items():
            if res.maps is None:
                continue
            per_head = {}
            for h, head in enumerate(res.heads):
                pairs = []
                for k in range(res.samples):
                    maps = [np.asarray(m[h, k]) for m in res.maps]
                    top = max((float(np.max(np.abs(m))) for m in maps if m.size), default=0.0)
                    vals = {}
                    for i, inp in enumerate(res.inputs):
                        if inp in s.texts:
                            keep = s.texts[inp][k] != PAD
                            vals[inp] = _f16(maps[i][keep] / top if top > 0 else
                                             np.zeros(int(keep.sum())))
                    pairs.append({"top": top, "values": vals})
                per_head[head] = pairs
            methods[name] = per_head
        shown = next(res for res, _ in s.results.values() if res.maps is not None)
        out["subjects"][s.label] = {"pairs": [int(x) for x in shown.sample_ids],
                                    "chars": chars, "methods": methods}
    return out


def trust_data(s) -> dict:
    """Faithfulness curves (medians, as the PDF draws them) and sanity correlations."""
    out = {}
    res = s.trust.get("faithfulness")
    if res is not None:
        ok = res.measurable()
        faith = {"fractions": _grid(res.fractions), "cells": [
            f"{res.heads[a]} <- {res.inputs[b]}" for a, b in zip(*np.nonzero(ok))]}
        for kind in ("deletion", "insertion"):
            curves, areas = res.normalised(kind), res.areas(kind)
            faith[kind] = {}
            for m, method in enumerate(res.methods):
                cells = curves[m][ok]
                if not cells.size:
                    continue
                with np.errstate(all="ignore"):
                    faith[kind][method] = {
                        "median": _grid(np.nanmedian(cells.reshape(-1, cells.shape[-1]), 0)),
                        "area": _num(np.nanmedian(areas[m][ok]))}
        out["faithfulness"] = faith
    res = s.trust.get("sanity")
    if res is not None:
        reach = res.structural
        san = {"layers": list(res.layers), "threshold": res.params["threshold"], "methods": {}}
        for m, method in enumerate(res.methods):
            with np.errstate(invalid="ignore"):
                steps = [_num(np.nanmean(np.abs(res.correlation[m, k][reach])))
                         for k in range(len(res.layers))]
            san["methods"][method] = {
                "curve": [1.0] + steps,
                "verdicts": {f"{h} <- {i}": res.verdict(method, h, i)
                             for h in res.heads for i in res.inputs}}
        out["sanity"] = san
    return out


def graph_data(s) -> dict:
    """The graph per call site as the PDF's models page lays it out, and reachability."""
    if not s.structure.get("readable", True):
        return {"readable": False}
    edges = [tuple(e) for e in s.structure["edges"]]
    pos, _ = graph_layout(edges, s.inputs)
    shared = s.structure["shared_layers"]
    nodes = []
    for node, (x, y) in pos.items():
        layer = node.partition("#")[0]
        kind = ("shared" if layer in shared else "input" if node in s.inputs
                else "head" if layer in s.heads else "layer")
        nodes.append({"name": node, "label": node_label(node, shared), "x": x, "y": y,
                      "kind": kind})
    return {"readable": True, "nodes": nodes, "edges": [list(e) for e in edges],
            "shared_layers": shared, "structural": s.structure["structural"]}


def subject_data(s) -> dict:
    return {"label": s.label, "name": s.name, "heads": list(s.heads), "inputs": list(s.inputs),
            "probes": {name: probe_data(res, summ) for name, (res, summ) in s.results.items()},
            "skipped": dict(s.skipped), "graph": graph_data(s), "trust": trust_data(s),
            "paths": s.paths, "timings": dict(s.timings),
            "accuracy": s.run["accuracy"] if s.run else None}


def sharing_data(result) -> dict | None:
    """The sharing learning curves: mean and t interval per head, arm and size."""
    if result is None:
        return None
    from probes.results.transfer import ARMS

    curves = {}
    for head in result.heads:
        curves[head] = {}
        for arm in ARMS:
            cis = [result.interval(head, arm, size) for size in result.sizes]
            curves[head][arm] = {"mean": [_num(c.mean) for c in cis],
                                 "low": [_num(c.low) for c in cis],
                                 "high": [_num(c.high) for c in cis]}
    return {"variant": result.variant, "sizes": list(result.sizes), "curves": curves,
            "sentences": result.sentences()}


def page_data(subjects, sharing=None) -> dict:
    """Everything the page shows, from the loaded subjects (and a SharingResult, or None)."""
    return {"title": "mtl-probe report: " + " vs ".join(s.label for s in subjects),
            "answer": answer_text(subjects), "methods": methods_text(subjects),
            "main": MAIN, "subjects": [subject_data(s) for s in subjects],
            "text": text_data(subjects), "sharing": sharing_data(sharing)}
