"""The lazy inputs the probes accept besides numpy arrays.

A lazy input is any object with `shape`, `dtype`, `ndim` and `__getitem__` that returns a real
numpy array for a slice or an index array of rows (`x[a:b]`, `x[ids]`), so that the probes read
one chunk at a time and memory follows --batch-size, not the sample count. Statistics a probe
needs over all rows (`mean`, `std`, `min`, `max` with numpy's arguments) are its methods.

A *coded one-hot* input also has `codes` ((N, T) integers), `features` (the one-hot width F)
and `empty_code` (the code of an all-zero row, outside [0, F), e.g. -1): the probes then ship
the int32 codes to the graph and one-hot encode them there (probes.forward.compiled_forward),
4F times fewer bytes per pass. `mtl_models.onehot.OneHot` is one.
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
