"""Integrated gradients' baselines, and the lazy arrays the gradient probes slice per chunk.

The lazy arrays never hold (N, ...) copies: a constant is one broadcast row, a permuted or
differenced input is computed for the rows a chunk asks for.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("zero", "mean", "shuffle")


def _derangement(rng, t: int) -> np.ndarray:
    """A random order of t steps that moves every step (a random cyclic derangement): a step
    left in place would make the baseline equal the input there, so integrated gradients
    would be exactly 0 at that step for every sample."""
    if t < 2:
        return np.arange(t)
    sigma = rng.permutation(t)
    perm = np.empty(t, int)
    perm[sigma] = np.roll(sigma, -1)  # step sigma[k] takes step sigma[k + 1]
    return perm


def baseline_arrays(baseline, xs, bg, rng, names):
    """Integrated gradients' x' per input: "zero" (one broadcast row), "mean" (over the
    background), "shuffle" (each sample's own steps in one random order that moves every
    step), or arrays of one sample's shape or of the inputs' shape."""
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"Expected a baseline in {list(BASELINES)} or arrays; "
                             f"received {baseline!r}")
        if baseline == "zero":  # one broadcast row, never an (N, ...) array of zeros
            return [Constant(0.0, x.shape) for x in xs]
        if baseline == "mean":
            return [np.broadcast_to(np.asarray(b.mean(axis=0), np.float32), x.shape)
                    for x, b in zip(xs, bg)]
        out = []
        for x in xs:
            if x.ndim < 2:
                raise ValueError(f"Expected inputs with a time axis for the shuffle baseline; "
                                 f"received shape {x.shape}")
            perm = _derangement(rng, x.shape[1])
            out.append(x[:, perm] if isinstance(x, np.ndarray) else Permuted(x, perm))
        return out
    if isinstance(baseline, dict):
        from probes.model.data import by_name

        baseline = by_name(baseline, names, "a baseline")
    out = []
    for name, x, b in zip(names, xs, baseline):
        b = np.asarray(b)
        b = b.astype(x.dtype if x.dtype.kind in "iu" else np.float32)
        if b.shape == x.shape[1:]:
            b = np.broadcast_to(b, x.shape)
        if b.shape != x.shape or not np.all(np.isfinite(b)):
            raise ValueError(f"Expected a finite baseline for {name!r} of shape {x.shape[1:]} "
                             f"or {x.shape}; received {b.shape}")
        out.append(b)
    return out


class Constant:
    """A read-only array of one value: slices materialise only the rows asked for, and the
    path function takes its one `row` (1, ...) and broadcasts it."""

    def __init__(self, value: float, shape: tuple):
        self.value, self.shape, self.dtype = value, shape, np.dtype(np.float32)
        self.row = np.full((1,) + tuple(shape[1:]), value, np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.full((len(range(*rows.indices(self.shape[0]))),) + self.shape[1:],
                       self.value, np.float32)


class Rows:
    """Rows [start, stop) of an array, sliced lazily."""

    def __init__(self, x, rows: slice):
        self.x, self.start = x, rows.start
        self.shape = (rows.stop - rows.start,) + tuple(x.shape[1:])
        if hasattr(x, "row"):
            self.row = x.row

    def __getitem__(self, rows: slice):
        return self.x[self.start + rows.start:self.start + rows.stop]


class Permuted:
    """x with its time axis permuted, computed per slice of rows."""

    def __init__(self, x, perm):
        self.x, self.perm, self.shape, self.dtype = x, perm, x.shape, np.dtype(np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.x[rows], np.float32)[:, self.perm]


class Difference:
    """x - baseline, computed per slice."""

    def __init__(self, x, b):
        self.x, self.b, self.shape = x, b, x.shape

    def __getitem__(self, rows: slice) -> np.ndarray:
        return (np.asarray(self.x[rows], np.float32) - np.asarray(self.b[rows], np.float32))
