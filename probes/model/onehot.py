"""A lazy one-hot array: int16 codes that become float32 one-hot rows only when indexed.

10,000 full-size tweet pairs are 2 x 2.9 GB as float32 one-hot, but 2 x 5.6 MB as int16 codes.
Probes read their inputs one chunk of rows at a time (`x[start:stop]`, `x[index_array]`), so
only those rows are ever encoded; the statistics the probes need over all rows (mean, std, min,
max) are computed from the codes.
"""

from __future__ import annotations

import math

import numpy as np

PAD = -1  # the code of a step a sample does not have (pre-padding): an all-zero row


def one_hot(codes: np.ndarray, features: int) -> np.ndarray:
    """(...) codes -> (..., F) float32 one-hot, e.g. (N, T) -> (N, T, F); PAD rows are all zero."""
    codes = np.asarray(codes)
    out = np.zeros(codes.shape + (features,), dtype=np.float32)
    flat, c = out.reshape(-1, features), codes.reshape(-1)  # views: any leading shape
    rows = np.flatnonzero(c != PAD)
    flat[rows, c[rows]] = 1.0
    return out


class OneHot:
    """(N, T, F) float32 one-hot view of (N, T) integer codes; PAD (-1) rows are all zero.

    Indexing along the first two axes (`x[3]`, `x[2:9]`, `x[[4, 1, 4]]`, `x[:, perm]`) encodes
    only the selected codes and returns a real numpy array equal to the same index of the full
    one-hot array; other indices, and `np.asarray(x)`, encode everything (correct, but the full
    size in memory).

    Args:
        codes: (N, T) integers in [-1, features).
        features: one-hot width F.
    """

    ndim = 3
    dtype = np.dtype(np.float32)
    empty_code = PAD  # the code of an all-zero row (probes.model.lazy's coded one-hot protocol)

    def __init__(self, codes, features: int):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.dtype.kind not in "iu":
            raise ValueError(f"Expected (N, T) integer codes; received {codes.dtype} of shape "
                             f"{codes.shape}")
        features = int(features)
        if features < 1 or codes.size and (codes.min() < PAD or codes.max() >= features):
            raise ValueError(f"Expected codes in [{PAD}, {features}); received values in "
                             f"[{codes.min()}, {codes.max()}]")
        self.codes, self.features = codes, features

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.codes.shape + (self.features,)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __repr__(self) -> str:
        return f"OneHot(shape={self.shape}, codes dtype={self.codes.dtype})"

    def __getitem__(self, index) -> np.ndarray:
        parts = index if isinstance(index, tuple) else (index,)
        if len(parts) <= 2 and not any(p is None or p is Ellipsis for p in parts):
            # One-hot adds a trailing axis, so indexing the leading two axes commutes with it.
            return one_hot(self.codes[index], self.features)
        return np.asarray(self)[index]

    def __array__(self, dtype=None, copy=None):
        out = one_hot(self.codes, self.features)
        return out if dtype is None else out.astype(dtype, copy=False)

    def _counts(self) -> np.ndarray:
        """(T, F) number of rows with code f at step t."""
        t = self.codes.shape[1]
        valid = self.codes != PAD  # (N, T)
        flat = (np.arange(t) * self.features)[None, :] + self.codes  # (N, T) cell index
        return np.bincount(flat[valid], minlength=t * self.features).reshape(t, self.features)

    def mean(self, axis=0, dtype=None) -> np.ndarray:
        """Mean over samples, (T, F), from the codes. Equal bit for bit to numpy's mean of the
        full array: its sums of 0/1 values are exact, and count / N is rounded once to float64
        (then to float32, which for N <= 20,000 always equals rounding once to float32)."""
        if axis != 0:
            raise ValueError(f"Expected axis=0 for the mean of a one-hot array; received {axis}")
        if len(self) == 0:
            raise ValueError("Expected at least one row to average; received 0")
        return (self._counts() / len(self)).astype(dtype or self.dtype)

    def std(self, dtype=None) -> float:
        """Standard deviation over all elements, from the number of ones k among M elements:
        sqrt((k (1 - m)^2 + (M - k) m^2) / M) with m = k / M, summed exactly and rounded once.
        numpy's pairwise sum over the full array may differ from it in the last bits."""
        total = self.size
        if total == 0:
            raise ValueError("Expected at least one element; received 0")
        k = int(np.count_nonzero(self.codes != PAD))
        m = k / total
        var = math.fsum([k * (1.0 - m) ** 2, (total - k) * m * m]) / total
        return np.dtype(dtype or np.float64).type(math.sqrt(var))

    def min(self) -> np.float32:
        """0.0 if any element is 0 (always, with F >= 2 or any PAD), else 1.0."""
        zero = self.features > 1 or bool(np.any(self.codes == PAD)) or self.size == 0
        return np.float32(0.0 if zero else 1.0)

    def max(self) -> np.float32:
        """1.0 if any element is 1 (any code that is not PAD), else 0.0."""
        return np.float32(1.0 if np.any(self.codes != PAD) else 0.0)
