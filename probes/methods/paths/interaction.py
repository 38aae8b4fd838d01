"""Whether a head combines two inputs additively: the interaction contrast.

For inputs i, j of a head f, every other input held at the sample's own value,
    c = f(a, b) - f(a', b) - f(a, b') + f(a', b')
is the discrete mixed difference (the interaction contrast of a two-way ANOVA cell). It is zero
for every a, a', b, b' exactly when f(a, b) = g(a) + h(b). It is taken in logit space (the
sigmoid of an additive logit is not additive), with a' and b' from other samples, drawn as
derangements so that a' is never a's own sample. Its size is judged against the head's own
spread: mean |c| / std of the logit over the base samples. The concat variant is additive up to
float noise (so it cannot express "same author", an interaction of the two tweets); concat_mlp
is not.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from probes.engine.forward import chunk_width, chunks, compiled_forward, run_chunk
from probes.methods.paths.decomposition import _targets
from probes.model import data as pdata
from probes.model.graph import structure
from probes.model.graphrun import logit_heads as squashed_heads
from probes.results import resultio
from probes.results.protocol import Result
from probes.results.seeds import generator
from probes.results.stats import bootstrap_means

VERDICTS = ("additive", "interacts", "inconclusive", "structural_zero")


@dataclasses.dataclass(frozen=True)
class InteractionSummary:
    """(T, Q) arrays derived from an Interaction (T output units, Q input pairs)."""

    mean_abs: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    logit_std: np.ndarray  # (T,)
    relative: np.ndarray
    relative_ci_low: np.ndarray
    relative_ci_high: np.ndarray
    verdict: np.ndarray
    settings: dict


@resultio.register("interaction")
@dataclasses.dataclass(frozen=True)
class Interaction(Result):
    """Per-pair interaction contrasts of every output unit for every pair of inputs.

    Attributes:
        model: identity of the model.
        targets: (T,) output units: head names, "head[c]" for heads with several units.
        inputs: (I,) input names, model order.
        input_pairs: (Q,) pairs of input names (i before j in model order).
        contrast: (T, Q, P) float64 contrasts in logit space, one per sample pair.
        logit: (T, P) f(a, b), the unit at the unaltered base samples.
        structural: (T, Q) bool, a path links both inputs of the pair to the unit's head.
        rows: (P,) the base sample of each pair.
        partners: (Q, 2, P) the samples that a' (input i) and b' (input j) come from.
        params: seed, pairs, tolerance, logit heads, batch size.
    """

    model: str
    targets: tuple[str, ...]
    inputs: tuple[str, ...]
    input_pairs: tuple[tuple[str, str], ...]
    contrast: np.ndarray
    logit: np.ndarray
    structural: np.ndarray
    rows: np.ndarray
    partners: np.ndarray
    params: dict

    def summary(self, *, n_boot: int = 2000, confidence: float = 0.95) -> InteractionSummary:
        """Mean |contrast| with a percentile bootstrap interval over the pairs, relative to the
        unit's logit std; verdict `additive` when the whole interval is below `tolerance`
        (float noise), `interacts` when it is all above, `structural_zero` when no path links
        both inputs to the head (the contrast is then exactly 0.0)."""
        rng = generator(self.params.get("seed"), "bootstrap")
        a = np.abs(self.contrast)  # (T, Q, P)
        boot = bootstrap_means(a, n_boot, rng)  # (T, Q, B)
        lo, hi = (np.percentile(boot, 50 * (1 + s * confidence), axis=2) for s in (-1, 1))
        std = self.logit.std(axis=1)  # (T,)
        mean = a.mean(axis=2)

        def rel(x):
            s = np.broadcast_to(std[:, None], x.shape)
            out = np.where(x == 0, 0.0, np.inf)
            return np.divide(x, s, out=out, where=s > 0)

        tol = self.params["tolerance"]
        verdict = np.full(mean.shape, "inconclusive", dtype=object)
        verdict[rel(hi) < tol] = "additive"
        verdict[rel(lo) >= tol] = "interacts"
        verdict[~self.structural & ~np.any(a != 0, axis=2)] = "structural_zero"
        return InteractionSummary(mean_abs=mean, ci_low=lo, ci_high=hi, logit_std=std,
                                  relative=rel(mean), relative_ci_low=rel(lo),
                                  relative_ci_high=rel(hi), verdict=verdict.astype(str),
                                  settings={"n_boot": n_boot, "confidence": confidence,
                                            "tolerance": tol})

    def verdict(self, head: str, input: str, other: str) -> str:  # noqa: A002
        """The verdict of the pair (input, other) at `head` (a unit "head[c]" for heads with
        several units), with the default summary."""
        pair = (input, other) if (input, other) in self.input_pairs else (other, input)
        return str(self.summary().verdict[self.targets.index(head),
                                          self.input_pairs.index(pair)])

    def table_rows(self, summary: InteractionSummary | None = None
                   ) -> tuple[list[str], list[list]]:
        """(header, rows): a row per unit and pair of inputs."""
        s = summary or self.summary()
        ci = round(100 * s.settings["confidence"])
        rows = []
        for t, target in enumerate(self.targets):
            for q, (i, j) in enumerate(self.input_pairs):
                rows.append([target, f"{i} x {j}", f"{s.mean_abs[t, q]:.3g}",
                             f"[{s.ci_low[t, q]:.3g}, {s.ci_high[t, q]:.3g}]",
                             f"{s.logit_std[t]:.4g}", f"{s.relative[t, q]:.3g}",
                             s.verdict[t, q]])
        return (["head", "inputs", "mean |contrast|", f"{ci}% CI", "logit std", "relative",
                 "verdict"], rows)

    def table(self, summary: InteractionSummary | None = None) -> str:
        """The contrasts as `probe paths` prints them."""
        from probes.results.text import table

        return (f"interaction of {self.model} over {self.rows.shape[0]} sample pairs (logit "
                "space)\n" + table(*self.table_rows(summary), align="llrrrrl"))

    def to_json(self, summary: InteractionSummary | None = None) -> dict:
        s = summary or self.summary()
        return {"probe": "paths/interaction", "model": self.model,
                "pairs": int(self.rows.shape[0]), "params": self.params,
                "targets": list(self.targets), "inputs": list(self.inputs),
                "input_pairs": [list(p) for p in self.input_pairs],
                "structural": self.structural.tolist(), "mean_abs": s.mean_abs.tolist(),
                "ci_low": s.ci_low.tolist(), "ci_high": s.ci_high.tolist(),
                "logit_std": s.logit_std.tolist(), "relative": s.relative.tolist(),
                "relative_ci_low": s.relative_ci_low.tolist(),
                "relative_ci_high": s.relative_ci_high.tolist(),
                "verdict": s.verdict.tolist(), "statistics": s.settings,
                "rows": self.rows.tolist(), "partners": self.partners.tolist(),
                "contrast": self.contrast.tolist()}


def interaction(model, inputs, *, rng: np.random.Generator, pairs: int | None = None,
                tolerance: float = 1e-5, batch_size: int = 256, seed: int | None = None,
                model_name: str | None = None) -> Interaction:
    """Interaction contrasts of every output unit for every pair of inputs, in logit space.

    Args:
        model: a functional Keras model with at least two inputs.
        inputs: {input name: (N, ...) array} or a list in model order, N >= 2.
        rng: draws the partner samples a', b' (independent derangements per input).
        pairs: P, sample pairs per input pair [default N]: base rows 0..N-1, repeated.
        tolerance: mean |contrast| / logit std below which a head is additive (float32 noise
            is ~1e-7 of the logit's magnitude).
        batch_size: rows per forward pass.
    Returns:
        An Interaction with contrast (T, Q, P).
    """
    names = pdata.input_names(model)
    if len(names) < 2:
        raise ValueError(f"Expected a model with at least two inputs for the interaction; "
                         f"received {len(names)}: {list(names)}")
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    n = xs[0].shape[0]
    if n < 2:
        raise ValueError(f"Expected at least 2 samples to draw partners from; received {n}")
    pairs = n if pairs is None else pairs
    if not isinstance(pairs, (int, np.integer)) or pairs < 1:
        raise ValueError(f"Expected pairs to be a positive integer; received {pairs!r}")
    if not 0 < tolerance < 1:
        raise ValueError(f"Expected tolerance in (0, 1); received {tolerance}")
    qs = list(itertools.combinations(range(len(names)), 2))
    rows = np.arange(pairs) % n  # (P,)
    partners = np.stack([[_derangements(n, pairs, rng) for _ in range(2)] for _ in qs])
    logit_heads = tuple(squashed_heads(model))  # read before their activation
    forward = compiled_forward(model, linear=frozenset(logit_heads))
    base = _units(forward, xs, rows, {}, batch_size)  # (P, T)
    contrast = np.empty((base.shape[1], len(qs), pairs))
    for q, (i, j) in enumerate(qs):
        a_, b_ = partners[q]
        f_a = _units(forward, xs, rows, {i: a_}, batch_size)
        f_b = _units(forward, xs, rows, {j: b_}, batch_size)
        f_ab = _units(forward, xs, rows, {i: a_, j: b_}, batch_size)
        contrast[:, q] = (base - f_a - f_b + f_ab).T
    reach = structure(model).reach  # (H, I)
    heads = [h for h, _, _ in _targets(model)]
    structural = np.array([[reach[h, i] and reach[h, j] for i, j in qs] for h in heads],
                          dtype=bool).reshape(len(heads), len(qs))
    return Interaction(model=model_name or model.name,
                       targets=tuple(label for _, label, _ in _targets(model)),
                       inputs=names, input_pairs=tuple((names[i], names[j]) for i, j in qs),
                       contrast=contrast, logit=base.T, structural=structural, rows=rows,
                       partners=partners,
                       params={"seed": seed, "pairs": int(pairs), "samples": int(n),
                               "tolerance": float(tolerance), "space": "logit",
                               "logit_heads": list(logit_heads), "batch_size": int(batch_size)})


def _derangements(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size,) partner rows: random derangements of 0..n-1 (no fixed point) laid end to end,
    so that partner[p] != p % n."""
    out, have = [], 0
    while have < size:
        perm = rng.permutation(n)
        if np.all(perm != np.arange(n)):  # accepted with probability ~1/e
            out.append(perm)
            have += n
    return np.concatenate(out)[:size]


def _units(forward, xs, rows, swapped: dict, batch_size: int) -> np.ndarray:
    """(P, T) outputs with input k taken from rows swapped[k] (default `rows`), in fixed
    chunks so that a unit that cannot see the swapped inputs gets bit-identical values."""
    index = [swapped.get(k, rows) for k in range(len(xs))]
    pieces = []
    width = chunk_width(rows.shape[0], batch_size)
    for a, b in chunks(rows.shape[0], batch_size):
        outs = run_chunk(forward, [x[idx[a:b]] for x, idx in zip(xs, index)], width)
        pieces.append(np.concatenate(outs, axis=1))  # (b, T)
    return np.concatenate(pieces)
