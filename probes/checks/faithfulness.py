"""Faithfulness of attribution methods: deletion and insertion curves.

Deletion (Samek et al. 2017's region perturbation; Petsiuk et al. 2018's deletion metric):
remove an input's time steps in the order a method ranks them, most important first, and
measure the head's score after each fraction; a faithful ranking makes the score fall fast.
Insertion: start from the input fully removed and restore steps in the same order; a faithful
ranking makes the score rise fast. A random order is the floor every method should beat.

"Removed" is what `probe ablate --mode zero` does: an all-zero row (a PAD code for one-hot
characters, token id 0 for token inputs). Only the steps a sample actually has are ranked (an
all-zero step, such as pre-padding, is already removed), so a fraction f removes round(f * L)
of a sample's L present steps. The score is the head's logit (its pre-activation), signed
towards the head's decision at the sample (for one unit, sign(logit) * logit; for several, the
logit of the predicted unit), and the rankings are the methods' signed attributions of that
same score. Curves are normalised per sample: (score(f) - score(all removed)) / (score(sample) -
score(all removed)), 1 at the sample and 0 with the input removed, so areas compare across
samples and methods. A cell where removing the whole input does not move the score cannot be
measured: its areas are NaN, and the result says why.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np

from probes.model import data as pdata
from probes.results import resultio
from probes.results.protocol import Result
from probes.results.text import table
from probes.engine.forward import (
    chunks,
    compiled_forward,
    compiled_partial,
    frontier_rows,
    layout,
    place,
    run_all,
    run_chunk,
)
from probes.model.graph import structure
from probes.model.lazy import coded_width
from probes.methods.method_maps import (GRADIENT_METHODS, first_rows, maps_of,
                                        method_settings, subset)

METHODS = GRADIENT_METHODS + ("occlusion", "random")
FRACTIONS = tuple(np.round(np.linspace(0, 1, 11), 10))
# |score(sample) - score(input removed)| below this (logit units) cannot be normalised.
FLAT = 1e-6


@resultio.register("faithfulness")
@dataclasses.dataclass(frozen=True)
class Faithfulness(Result):
    """Deletion and insertion curves of every method, head and input.

    Attributes:
        heads, inputs, methods: names (H, I, M).
        fractions: (F,) fractions of each sample's present steps removed (or restored).
        deletion, insertion: (M, H, I, N, F) signed logit scores along the curves.
        full: (H, N) the score at the sample; empty: (H, I, N) with input i fully removed.
        structural: (H, I) a path from input i to head h exists.
        sample_ids: (N,); params: method settings, seed, batch size.
    """

    heads: tuple
    inputs: tuple
    methods: tuple
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    full: np.ndarray
    empty: np.ndarray
    structural: np.ndarray
    sample_ids: np.ndarray
    params: dict

    def normalised(self, kind: str) -> np.ndarray:
        """(M, H, I, N, F) curves scaled to 1 at the sample and 0 with the input removed; NaN
        where removing the input does not move the score (see FLAT)."""
        curves = {"deletion": self.deletion, "insertion": self.insertion}[kind]
        span = self.full[:, None, :] - self.empty  # (H, I, N)
        ok = np.abs(span) > FLAT
        safe = np.where(ok, span, 1.0)
        out = (curves - self.empty[None, ..., None]) / safe[None, ..., None]
        return np.where(ok[None, ..., None], out, np.nan)

    def areas(self, kind: str) -> np.ndarray:
        """(M, H, I, N) area under the normalised curve (trapezoid over the fractions):
        deletion, lower is more faithful; insertion, higher is."""
        y = self.normalised(kind)
        x = np.asarray(self.fractions, np.float64)
        return ((y[..., 1:] + y[..., :-1]) * np.diff(x) / 2).sum(axis=-1)

    def measurable(self) -> np.ndarray:
        """(H, I) cells where the head has a path from the input and removing the input moves
        the score for at least half the samples."""
        span = np.abs(self.full[:, None, :] - self.empty) > FLAT
        return self.structural & (span.mean(axis=2) >= 0.5)

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): per head and input, each method's median deletion and insertion
        areas over samples with their interquartile range (robust to the samples whose small
        span makes the normalised curve swing)."""
        header = ["head", "input"] + [f"{m} del / ins" for m in self.methods]
        dele, ins = self.areas("deletion"), self.areas("insertion")
        rows = []
        for h, head in enumerate(self.heads):
            for i, name in enumerate(self.inputs):
                if not self.measurable()[h, i]:
                    why = ("no path" if not self.structural[h, i]
                           else "removing the input does not move the score")
                    rows.append([head, name] + [f"- ({why})"] + [""] * (len(self.methods) - 1))
                    continue
                rows.append([head, name] + [f"{_median(dele[m, h, i])} / "
                                            f"{_median(ins[m, h, i])}"
                                            for m in range(len(self.methods))])
        return header, rows

    def table(self) -> str:
        """The areas as `probe faithfulness` prints them."""
        header, rows = self.table_rows()
        return (f"areas under the normalised curves over {len(self.sample_ids)} samples, median "
                "[interquartile range]; deletion: lower is more faithful, insertion: higher\n"
                + table(header, rows, align="ll" + "r" * len(self.methods)))

    def summary(self) -> dict:
        """Per method, head and input, the median deletion and insertion areas over the
        samples (None where the cell is not measurable), and which cells are."""
        def medians(a):
            with warnings.catch_warnings():  # a cell without a path is all NaN: no median
                warnings.simplefilter("ignore", RuntimeWarning)
                m = np.nanmedian(np.where(self.measurable()[None, :, :, None], a, np.nan),
                                 axis=3)
            return [[[None if not np.isfinite(v) else float(v) for v in row] for row in hm]
                    for hm in m]

        return {"measurable": self.measurable().tolist(),
                "deletion_area": medians(self.areas("deletion")),
                "insertion_area": medians(self.areas("insertion"))}

    def to_json(self) -> dict:
        """`probe faithfulness --json`: names, fractions, and the summary's medians."""
        return {"probe": "faithfulness", "heads": list(self.heads), "inputs": list(self.inputs),
                "methods": list(self.methods), "fractions": self.fractions.tolist(),
                "samples": len(self.sample_ids), **self.summary()}


def _median(values) -> str:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "n/a"
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return f"{q2:.3f} [{q1:.2f}, {q3:.2f}]"


def faithfulness(model, inputs, *, rng: np.random.Generator, methods=METHODS,
                 fractions=FRACTIONS, batch_size: int = 256, seed: int | None = None,
                 first: int | None = None, background=None, sample_ids=None, labels=None,
                 model_name: str | None = None, settings=None) -> Faithfulness:
    """Deletion and insertion curves of `methods` on every head and input.

    Args:
        model: a functional Keras model whose inputs have a time (or feature) axis 1.
        inputs: {input name: (N, T, ...) array} (or lazy inputs).
        rng: the random order, and the randomness of the methods (smoothgrad, occlusion).
        methods: from METHODS; "random" is the floor.
        fractions: increasing, from 0 to 1.
        batch_size: rows per forward pass.
        first: use only the first `first` samples (the report's cap on this probe's cost).
        background, sample_ids: every sample of the run and the rows of `inputs` among them
            (a shard, probes.run.shards): the random order and the passes are the whole run's,
            so a shard's curves equal the same rows of the unsharded run's.
        labels: accepted for the registry's one signature; not used.
        settings: the gradient methods' settings ({method: {name: value}}) in place of
            probes.methods.method_maps.SETTINGS (probes.methods.method_maps.method_settings).
    Returns:
        A Faithfulness result; its params hold the settings used.
    """
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    fractions = np.asarray(fractions, np.float64)
    settings = method_settings(settings)
    if bad or not methods:
        raise ValueError(f"Expected methods from {list(METHODS)}; received {list(methods)}")
    if (fractions.ndim != 1 or fractions.size < 2 or fractions[0] != 0 or fractions[-1] != 1
            or np.any(np.diff(fractions) <= 0)):
        raise ValueError(f"Expected increasing fractions from 0 to 1; received "
                         f"{fractions.tolist()}")
    names = pdata.input_names(model)
    heads = pdata.output_names(model)
    xs = first_rows(pdata.canonical_inputs(model, inputs, "inputs"), first)
    bg, sub_ids, ids, total = subset(model, xs, background, sample_ids, first)
    for name, x in zip(names, xs):
        if x.ndim < 2:
            raise ValueError(f"Expected inputs with an axis 1 to remove steps along; "
                             f"received {name!r} of shape {x.shape}")
    encoded = tuple(coded_width(x) for x in xs)
    values = [x.codes if w else x for x, w in zip(xs, encoded)]
    empty = [x.empty_code if w else 0 for x, w in zip(xs, encoded)]
    forward = compiled_forward(model, encoded, linear=frozenset(heads))
    n = values[0].shape[0]
    present = [_present(v, w is not None, e) for v, w, e in zip(values, encoded, empty)]
    full, sign, units = _scores_at(forward, values, batch_size, ids, total)
    importance = _importances(model, xs, rng, methods, sign, batch_size, seed, bg, sub_ids,
                              ids, total, settings)
    h_n, i_n = len(heads), len(names)
    shape = (len(methods), h_n, i_n, n, fractions.size)
    deletion, insertion = np.empty(shape), np.empty(shape)
    empty_scores = np.empty((h_n, i_n, n))
    inner = fractions[1:-1]  # the ends are every order's: the sample and the input removed
    reach = structure(model).reach
    for i in range(i_n):
        # Only the call sites that read input i run on the altered rows; the rest of the
        # graph is the samples' own, computed once (probes.engine.forward.compiled_partial).
        front_of, partial = compiled_partial(model, i, encoded, linear=frozenset(heads))
        front = frontier_rows(front_of, values, batch_size, ids, total)
        curve = functools.partial(_curve, partial, values, front, i, present=present[i],
                                  empty=empty[i], sign=sign, units=units,
                                  batch_size=batch_size, ids=ids, total=total)
        every = _orders(np.zeros(present[i].shape), present[i])  # removes all at fraction 1
        removed = curve(every, np.ones(1), "deletion")[..., 0]
        empty_scores[:, i] = removed  # (H, N)
        for m, method in enumerate(methods):
            # The random order is the same for every head: one pass serves them all.
            rows = [None] if method == "random" else range(h_n)
            for h in rows:
                order = _orders(importance[method][i if h is None else (h, i)], present[i])
                for kind, out in (("deletion", deletion), ("insertion", insertion)):
                    if h is not None and not reach[h, i]:
                        # No path from input i: head h's rows of the partial pass are its
                        # given output at the samples, the scores of `removed`, at every
                        # fraction; the pass would return exactly these.
                        scores = np.repeat(removed[:, :, None], inner.size, axis=2)
                    else:
                        scores = curve(order, inner, kind)  # (H, N, F - 2)
                    start, end = (full, removed) if kind == "deletion" else (removed, full)
                    for t in (range(h_n) if h is None else [h]):
                        out[m, t, i] = np.concatenate(
                            [start[t, :, None], scores[t], end[t, :, None]], axis=1)
    params = {"methods": list(methods), "seed": seed, "batch_size": int(batch_size),
              "first": first, "settings": settings,
              "removed": "zero rows (PAD codes for one-hot characters, id 0 for tokens)",
              "model": model_name or model.name}
    return Faithfulness(heads=heads, inputs=names, methods=methods, fractions=fractions,
                        deletion=deletion, insertion=insertion, full=full,
                        empty=empty_scores, structural=reach,
                        sample_ids=ids, params=params)


def _present(x, coded: bool, empty) -> np.ndarray:
    """(N, T) bool: the steps a sample has (not already all zero)."""
    if coded or x.dtype.kind in "iu":
        return np.asarray(x) != empty
    out = np.empty(x.shape[:2], bool)
    for a, b in chunks(x.shape[0], 256):
        chunk = np.asarray(x[a:b])
        out[a:b] = np.any(chunk.reshape(chunk.shape[0], chunk.shape[1], -1) != 0, axis=2)
    return out


def _scores_at(forward, values, batch_size, ids, total):
    """Signed scores at the samples (H, N), each head's sign (H, N) and unit (H, N)."""
    outs = run_all(forward, values, batch_size, ids, total)  # H x (N, C)
    units = np.stack([o.argmax(axis=1) if o.shape[1] > 1 else np.zeros(len(o), int)
                      for o in outs])
    raw = np.stack([o[np.arange(len(o)), u] for o, u in zip(outs, units)])
    sign = np.stack([np.where(r >= 0, 1.0, -1.0) if o.shape[1] == 1 else np.ones_like(r)
                     for o, r in zip(outs, raw)])
    return sign * raw, sign, units


def _importances(model, xs, rng, methods, sign, batch_size, seed, bg, sub_ids, ids,
                 total, settings) -> dict:
    """method -> per (head, input) (N, T) importance of each step (higher: removed first);
    "random" -> per input (N, T) random keys (drawn for all `total` samples: a shard's are
    the unsharded run's)."""
    from probes.methods.ablation import ablate

    t = [x.shape[1] for x in xs]
    out = {}
    for method in methods:
        if method == "random":
            out[method] = [rng.random((total, ti))[ids] for ti in t]
        elif method == "occlusion":
            res = ablate(model, xs, rng=rng, mode="occlusion", batch_size=batch_size,
                         seed=seed, background=bg, sample_ids=sub_ids)
            window = res.params["window"]
            out[method] = {(h, i): np.repeat(res.profile[h, i], window, axis=1)[:, :t[i]]
                           for h in range(len(res.heads)) for i in range(len(xs))}
        else:
            maps = maps_of(model, xs, method, rng, batch_size, seed, bg, sub_ids, settings)
            out[method] = {(h, i): sign[h][:, None] * _per_step(maps[i][h])
                           for h in range(len(sign)) for i in range(len(xs))}
    return out


def _per_step(m: np.ndarray) -> np.ndarray:
    """(N, T, ...) map -> (N, T): a step's attribution (summed beyond axis 1)."""
    return m.reshape(m.shape[0], m.shape[1], -1).sum(axis=2) if m.ndim > 2 else m


def _orders(importance: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(N, T) step indices, present steps from the most important, then absent ones."""
    keyed = np.where(present, importance, -np.inf)
    return np.argsort(-keyed, axis=1, kind="stable")


def _curve(partial, values, front, i, order, fractions, kind, *, present, empty, sign, units,
           batch_size, ids, total) -> np.ndarray:
    """(H, N, F) signed scores with input i's top-ranked steps removed (deletion) or only
    those present (insertion), per fraction; in the passes of a run over all `total` samples
    (probes.engine.forward.layout), F rows per sample, through the partial pass of input i (`front`:
    the rest of the graph's outputs at the samples, probes.engine.forward.compiled_partial)."""
    n, f_n = values[0].shape[0], fractions.size
    out = np.empty((sign.shape[0], n, f_n))
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None], axis=1)
    for p in layout(ids, total, max(1, batch_size // f_n)):
        a, b = p.start, p.stop
        steps, have = place(rank[a:b], p), place(present[a:b], p)  # (w, T)
        k = np.round(fractions[None, :] * have.sum(axis=1)[:, None]).astype(int)  # (w, F)
        top = steps[:, None, :] < k[:, :, None]  # (w, F, T): among the first k of the order
        gone = top if kind == "deletion" else have[:, None, :] & ~top
        gone |= ~have[:, None, :]  # absent steps stay absent
        batch = [np.repeat(place(np.asarray(v[a:b]), p), f_n, axis=0)
                 for v in values]  # (w * F, T, ...)
        batch[i][gone.reshape(-1, gone.shape[2])] = empty
        rows = [np.repeat(place(f[a:b], p), f_n, axis=0) for f in front]
        outs = run_chunk(lambda xs, rows=rows: partial(xs, rows), batch, p.width * f_n)
        for h, o in enumerate(outs):
            o = o.reshape(p.width, f_n, -1)[p.offset:p.offset + b - a]
            picked = np.take_along_axis(o, units[h, a:b, None, None], axis=2)[..., 0]
            out[h, a:b] = sign[h, a:b, None] * picked
    return out
