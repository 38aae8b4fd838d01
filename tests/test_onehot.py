"""The lazy one-hot array: equal to the eager one where it is read, and read only by chunks."""

import tracemalloc

import keras
import numpy as np
import pytest

from probes import one_hot
from probes.model.onehot import OneHot
from mtl_models.variants import build_model
from probes.methods.ablation import CODED, MODES
from probes.model import data as pdata
from probes.run.registry import PROBES

T, F = 6, 5


def _codes(n, t=T, f=F, seed=0):
    codes = np.random.default_rng(seed).integers(0, f, size=(n, t)).astype(np.int16)
    codes[:, :2] = -1  # pre-padding, as the tweets have
    codes[0] = -1  # and one empty tweet
    return codes


def test_shape_dtype_and_every_index_equal_the_eager_array():
    codes = _codes(9)
    lazy, eager = OneHot(codes, F), one_hot(codes, F)
    assert lazy.shape == eager.shape == (9, T, F) and len(lazy) == 9 and lazy.ndim == 3
    assert lazy.dtype == np.float32 and lazy.size == eager.size
    perm = np.random.default_rng(1).permutation(T)
    for index in (slice(2, 7), slice(None, None, -2), 3, -1, np.array([4, 1, 4, 8]),
                  np.arange(9) % 2 == 0, (slice(1, 5), perm), (2, 3), (np.array([0, 8]), 5),
                  (slice(None), slice(None), 2), (Ellipsis, 0), (None, 1)):
        got = lazy[index]
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_array_equal(got, eager[index])
    np.testing.assert_array_equal(np.asarray(lazy), eager)


def test_statistics_from_the_codes_match_numpy_on_the_full_array():
    for n, seed in ((1, 0), (7, 1), (333, 2)):
        codes = _codes(n, seed=seed)
        lazy, eager = OneHot(codes, F), one_hot(codes, F)
        # Sums of zeros and ones are exact, so the means agree bit for bit.
        np.testing.assert_array_equal(lazy.mean(axis=0), eager.mean(axis=0))
        np.testing.assert_array_equal(lazy.mean(axis=0, dtype=np.float64),
                                      eager.mean(axis=0, dtype=np.float64))
        assert lazy.mean(axis=0).dtype == np.float32
        # numpy's pairwise sum of squared deviations rounds differently: 4 ulp at most.
        np.testing.assert_allclose(lazy.std(dtype=np.float64), eager.std(dtype=np.float64),
                                   rtol=1e-15, atol=0)
        assert lazy.min() == eager.min() and lazy.max() == eager.max()
    assert OneHot(np.full((3, 2), -1), 4).max() == 0.0  # all padding
    assert OneHot(np.zeros((3, 2), int), 1).min() == 1.0  # one feature, never padded


@pytest.mark.parametrize("codes,features,match", [
    (np.zeros((3, 4, 1), int), 5, r"Expected \(N, T\) integer codes"),
    (np.zeros((3, 4)), 5, r"Expected \(N, T\) integer codes"),
    (np.full((3, 4), 5), 5, r"Expected codes in \[-1, 5\); received values in \[5, 5\]"),
    (np.full((3, 4), -2), 5, r"Expected codes in \[-1, 5\)"),
])
def test_bad_codes_are_refused(codes, features, match):
    with pytest.raises(ValueError, match=match):
        OneHot(codes, features)


class Watched(OneHot):
    """Records the most rows one index returned; fails if anything materializes it all."""

    most_rows = 0

    def __getitem__(self, index):
        out = super().__getitem__(index)
        Watched.most_rows = max(Watched.most_rows, out.shape[0] if out.ndim == 3 else 1)
        return out

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the full one-hot array was materialized")


@pytest.fixture(scope="module")
def separate():
    return build_model("separate", seq_len=T, features=F, units=3, seed=1)


@pytest.mark.parametrize("mode", MODES)
def test_ablation_reads_chunks_only_and_matches_eager_inputs(separate, mode):
    codes = {"tweet_a": _codes(50, seed=3), "tweet_b": _codes(50, seed=4)}
    lazy = {k: Watched(v, F) for k, v in codes.items()}
    eager = {k: one_hot(v, F) for k, v in codes.items()}
    Watched.most_rows = 0

    def run(inputs):
        return PROBES[f"ablation/{mode}"](separate, inputs, rng=np.random.default_rng(0),
                                          batch_size=8)

    got, want = run(lazy), run(eager)
    if mode in CODED:  # codes go to the graph: no one-hot rows are encoded in numpy at all
        assert Watched.most_rows == 0
    else:
        assert 1 <= Watched.most_rows <= 8  # never more rows than --batch-size at once
    if mode == "noise":
        # Its scale is the std over the whole input, from the codes: equal to numpy's up to
        # a few ulp, which the float32 inputs round away almost always. 1e-6: float32 noise.
        np.testing.assert_allclose(got.effects, want.effects, rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_array_equal(got.effects, want.effects)
    assert np.all(got.effects[0, 0, 1:] > 0)  # guard: the inputs matter (row 0 is all padding)


def test_peak_numpy_memory_is_bounded_by_the_batch_not_the_samples():
    # 2000 x 50 x 64 float32 is 25.6 MB per input as an eager one-hot array.
    n, t, f = 2000, 50, 64
    xa, xb = keras.Input((t, f), name="a"), keras.Input((t, f), name="b")
    flat = keras.layers.concatenate([keras.layers.Flatten()(xa), keras.layers.Flatten()(xb)])
    model = keras.Model([xa, xb], [keras.layers.Dense(1, name=h)(flat) for h in ("h1", "h2")])
    inputs = {k: OneHot(_codes(n, t, f, seed=s), f) for k, s in (("a", 5), ("b", 6))}
    PROBES["ablation/shuffle"](model, inputs, rng=np.random.default_rng(0), batch_size=64,
                               permutations=1)  # compiles outside the measurement
    tracemalloc.start()
    PROBES["ablation/shuffle"](model, inputs, rng=np.random.default_rng(0), batch_size=64)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # A chunk is 64 x 50 x 64 float32 = 0.8 MB; a few copies of it per pass, plus the
    # (H, I, N) effects and the permutations (measured: 6 MB). Encoding one whole input
    # would take 25.6 MB: the bound is half of that.
    assert peak < 12.8e6, peak


def test_canonical_inputs_checks_a_lazy_array_without_reading_it(separate):
    lazy = [Watched(_codes(4), F), Watched(_codes(4), F)]
    Watched.most_rows = 0
    out = pdata.canonical_inputs(separate, lazy)
    assert out[0] is lazy[0] and Watched.most_rows == 0
    with pytest.raises(ValueError, match=r"Expected inputs 'tweet_b' of shape \(N, 6, 5\); "
                                         r"received \(4, 6, 7\)"):
        pdata.canonical_inputs(separate, [lazy[0], OneHot(_codes(4), 7)])
