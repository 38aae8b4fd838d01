"""The lazy inputs the probes accept besides numpy arrays.

A lazy input is any object with `shape`, `dtype`, `ndim` and `__getitem__` that returns a real
numpy array for a slice or an index array of rows (`x[a:b]`, `x[ids]`), so that the probes read
one chunk at a time and memory follows --batch-size, not the sample count. Statistics a probe
needs over all rows (`mean`, `std`, `min`, `max` with numpy's arguments) are its methods.

A *coded one-hot* input also has `codes` ((N, T) integers), `features` (the one-hot width F)
and `empty_code` (the code of an all-zero row, outside [0, F), e.g. -1): the probes then ship
the int32 codes to the graph and one-hot encode them there (probes.engine.forward.compiled_forward),
4F times fewer bytes per pass. `probes.model.onehot.OneHot` is one.
"""

from __future__ import annotations

import numpy as np


def is_lazy(x) -> bool:
    """Whether `x` is a lazy input rather than an array (see the module docstring)."""
    return not isinstance(x, np.ndarray) and all(
        hasattr(x, a) for a in ("shape", "dtype", "ndim", "__getitem__"))


def coded_width(x) -> int | None:
    """The one-hot width F of a coded one-hot input, else None."""
    if is_lazy(x) and all(hasattr(x, a) for a in ("codes", "features", "empty_code")):
        return int(x.features)
    return None


class RowView:
    """Rows [start, stop) of a lazy input, still lazy: slices, indices and index arrays are
    read from the underlying input (a coded one-hot input's view keeps its codes' view, so it
    still travels to the graph as codes). A shard of a lazy input is one."""

    def __init__(self, x, part: slice):
        self.x, self.start = x, int(part.start or 0)
        self.stop = int(x.shape[0] if part.stop is None else part.stop)
        self.shape = (self.stop - self.start,) + tuple(x.shape[1:])
        self.dtype, self.ndim = x.dtype, x.ndim
        if coded_width(x) is not None:
            self.codes = x.codes[self.start:self.stop]
            self.features, self.empty_code = x.features, x.empty_code

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            a, b, step = index.indices(self.shape[0])
            return self.x[self.start + a:self.start + b:step]
        if isinstance(index, (int, np.integer)):
            return self.x[self.start + range(self.shape[0])[index]]
        index = np.asarray(index)
        if index.dtype.kind in "iu":
            return self.x[self.start + np.arange(self.shape[0])[index]]
        return np.asarray(self)[index]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.x[self.start:self.stop])
        return out if dtype is None else out.astype(dtype, copy=False)


def rows_of(x, part: slice):
    """Rows `part` of an array (a view) or of a lazy input (a RowView, never materialised)."""
    return RowView(x, part) if is_lazy(x) else x[part]
