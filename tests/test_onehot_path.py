"""The one-hot path: layers run from gathered kernel rows give the dense path's numbers.

Every comparison runs the same probe twice, once on the one-hot path and once on the dense
path (`one_hot_path=False`, or a lazy copy that is not recognised as one-hot), on tiny seeded
models, and checks that the one-hot path was really taken (params["one_hot"]).
"""

import functools

import keras
import numpy as np
import pytest
from keras import layers

from probes import one_hot
from probes.model.onehot import OneHot
from mtl_models.variants import build_model
from probes.engine.forward import compiled_forward
from probes.engine.onehot_path import gather_sites, one_hot_codes
from probes.methods.ablation import ablate
from probes.methods.attribution import attribute

T, F, N = 5, 7, 6
CASES = [("integrated_gradients", {"baseline": "zero", "steps": 4}),
         ("integrated_gradients", {"baseline": "shuffle", "steps": 4}),
         ("integrated_gradients", {"baseline": "mean", "steps": 4}),
         ("input_x_gradient", {}), ("smoothgrad", {"noise_samples": 3})]


class Plain:
    """A lazy input (probes.model.lazy) that is not a coded one-hot one: the dense path's input."""

    def __init__(self, x):
        self.x, self.shape, self.dtype, self.ndim = x, x.shape, x.dtype, x.ndim

    def __getitem__(self, rows):
        return self.x[rows]

    def __len__(self):
        return len(self.x)

    def mean(self, axis=0, dtype=None):
        return self.x.mean(axis=axis, dtype=dtype)

    def std(self, dtype=None):
        return self.x.std(dtype=dtype)

    def min(self):
        return self.x.min()

    def max(self):
        return self.x.max()


def _codes(seed, n=N):
    """(n, T) codes in [-1, F): -1 rows are all-zero (padding)."""
    return np.random.default_rng(seed).integers(-1, F, size=(n, T))


def _inputs(model, seed=0):
    return {t._keras_history.operation.name: one_hot(_codes(seed + i), F)
            for i, t in enumerate(model.inputs)}


def _two_inputs(recurrent, after=lambda y: y):
    """Two one-hot inputs through one shared layer (then `after`), both heads reading both."""
    a, b = keras.Input((T, F), name="a"), keras.Input((T, F), name="b")
    merged = layers.concatenate([after(recurrent(a)), after(recurrent(b))])
    return keras.Model([a, b], [layers.Dense(1, activation="sigmoid", name=h)(merged)
                                for h in ("h1", "h2")])


def _dense_model():
    """A one-hot input through a Dense layer (its rows projected), then flattened."""
    x = keras.Input((T, F), name="x")
    hidden = layers.Dense(4, activation="tanh", name="proj")(x)  # (b, T, 4)
    return keras.Model(x, layers.Dense(1, activation="sigmoid", name="h")(
        layers.Flatten()(hidden)))


BUILDERS = {
    # autodiff through Keras' loop (probes.engine.projected): implementation 1
    "lstm_impl1_backwards": lambda: _two_inputs(layers.LSTM(3, implementation=1,
                                                            go_backwards=True, name="rnn")),
    # the written-out backward (probes.engine.recurrent_grads)
    "lstm_backwards_sequences": lambda: _two_inputs(
        layers.LSTM(3, go_backwards=True, return_sequences=True, name="rnn"), layers.Flatten()),
    "gru": lambda: _two_inputs(layers.GRU(3, name="rnn")),
    "gru_before": lambda: _two_inputs(layers.GRU(3, reset_after=False, name="rnn")),
    "simple_rnn_sequences": lambda: _two_inputs(
        layers.SimpleRNN(3, return_sequences=True, name="rnn"), layers.Flatten()),
    "dense": _dense_model,
    "separate": lambda: build_model("separate", seq_len=T, features=F, units=3, seed=2),
    "concat": lambda: build_model("concat", seq_len=T, features=F, units=3, seed=2),
    # the same model again for the local methods' cases: concat's cases split in two tests
    "concat_local": lambda: build_model("concat", seq_len=T, features=F, units=3, seed=2),
}
# Variants whose code paths the full models already run: a one-hot factor with two active
# features (shuffle) and a dense factor (mean) only; each case traces gradient functions
# (seconds, on both paths). The separate model runs every case below too.
REDUCED = {name: CASES[1:3] for name in ("lstm_impl1_backwards", "lstm_backwards_sequences",
                                         "gru_before", "separate")}
REDUCED.update(concat=CASES[:3], concat_local=CASES[3:])


@functools.lru_cache(maxsize=None)
def _model(name):
    """One model per name for the whole module: the tests share its compiled functions."""
    return BUILDERS[name]()


def _attr(model, x, method, kw, **extra):
    return attribute(model, x, rng=np.random.default_rng(0), method=method, seed=0, maps=True,
                     **kw, **extra)


def _close(got, want, what):
    # float32 rounding: the projection sums in another order than the dense matmul and its
    # gradient. rtol 1e-5 on every value, with an atol of 1e-6 of the array's largest value
    # for the per-step signed maps, where terms of either sign cancel to near 0.
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max(),
                               err_msg=what)


# Six of the nine entries in the default run (concat in two halves); a GRU resetting after, a
# SimpleRNN and an LSTM of implementation 1 in the slow set (each case traces gradient functions
# on both paths).
SLOW = ("gru", "simple_rnn_sequences", "lstm_impl1_backwards")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in BUILDERS])
def test_one_hot_path_equals_the_dense_path(name):
    model = _model(name)
    weights = [w.copy() for w in model.get_weights()]
    x = _inputs(model)
    for method, kw in REDUCED.get(name, CASES):
        fast, dense = _attr(model, x, method, kw), _attr(model, x, method, kw,
                                                         one_hot_path=False)
        assert set(fast.params["one_hot"]) == {t._keras_history.operation.name
                                              for t in model.inputs}, method
        assert dense.params["one_hot"] == {}
        for field in ("effects", "signed", "profile"):
            if getattr(dense, field) is not None:
                _close(getattr(fast, field), getattr(dense, field), f"{method} {kw} {field}")
        for got, want in zip(fast.maps, dense.maps):
            _close(got, want, f"{method} {kw} maps")
        # guard: every cell the graph links is measured
        assert np.all(dense.effects.max(axis=2)[dense.structural] > 1e-4)
    for w, w0 in zip(model.get_weights(), weights):  # the model is read, never changed
        np.testing.assert_array_equal(w, w0)


def test_separate_cross_cells_stay_exactly_zero():
    model = _model("separate")
    x = _inputs(model)
    for method, kw in CASES:
        r = _attr(model, x, method, kw)
        assert r.params["one_hot"] == {"tweet_a": "shared_lstm", "tweet_b": "shared_lstm"}
        assert np.all(r.effects[0, 1] == 0.0) and np.all(r.effects[1, 0] == 0.0), method
        assert r.effects[0, 0].max() > 1e-4 and r.effects[1, 1].max() > 1e-4  # guard


def test_a_layer_that_cannot_gather_falls_back_with_a_note():
    x_in = keras.Input((T, F), name="x")
    masked = layers.LSTM(3, name="rnn")(layers.Masking(name="mask")(x_in))
    model = keras.Model(x_in, layers.Dense(1, activation="sigmoid", name="h")(masked))
    x = _inputs(model)
    fast = _attr(model, x, *CASES[0])
    dense = _attr(model, x, *CASES[0], one_hot_path=False)
    assert fast.params["one_hot"] == {}
    note, = fast.params["notes"]  # Masking's ops read the input
    assert note.startswith("x: one-hot, dense path (") and note.endswith(
        "is not a Dense, LSTM, GRU or SimpleRNN layer)"), note
    np.testing.assert_array_equal(fast.effects, dense.effects)
    assert np.all(fast.effects > 0)  # guard


def test_a_one_hot_input_beside_a_dense_one():
    model = _model("concat")
    x = _inputs(model)
    x["tweet_b"] = np.random.default_rng(9).normal(size=x["tweet_b"].shape).astype("float32")
    for method, kw in CASES[1:4]:
        fast, dense = _attr(model, x, method, kw), _attr(model, x, method, kw,
                                                         one_hot_path=False)
        assert fast.params["one_hot"] == {"tweet_a": "shared_lstm"}, method
        for field in ("effects", "signed", "profile"):
            if getattr(dense, field) is not None:
                _close(getattr(fast, field), getattr(dense, field), f"{method} {field}")
        assert np.all(dense.effects > 0)  # guard


def test_lazy_one_hot_inputs_give_the_float_arrays_numbers():
    model = _model("concat")
    codes = {"tweet_a": _codes(3), "tweet_b": _codes(4)}
    lazy = {k: OneHot(v, F) for k, v in codes.items()}
    eager = {k: one_hot(v, F) for k, v in codes.items()}
    for method, kw in CASES:
        got, want = _attr(model, lazy, method, kw), _attr(model, eager, method, kw)
        assert got.params["one_hot"] == want.params["one_hot"] != {}
        np.testing.assert_array_equal(got.effects, want.effects)  # the same chunks, bit for bit
        if want.signed is not None:
            np.testing.assert_array_equal(got.signed, want.signed)


@pytest.mark.parametrize("mode", ["shuffle", "zero", "occlusion"])
def test_ablation_through_gathered_rows_equals_the_dense_forward(mode):
    model = _model("separate")
    x = _inputs(model, seed=5)
    fast = ablate(model, x, rng=np.random.default_rng(0), mode=mode, batch_size=4)
    dense = ablate(model, {k: Plain(v) for k, v in x.items()}, rng=np.random.default_rng(0),
                   mode=mode, batch_size=4)
    assert fast.params["one_hot"] == {"tweet_a": "shared_lstm", "tweet_b": "shared_lstm"}
    assert dense.params["one_hot"] == {}
    np.testing.assert_array_equal(fast.effects, dense.effects)  # bit for bit (measured)
    assert np.all(fast.effects[0, 1] == 0.0) and np.all(fast.effects[1, 0] == 0.0)
    assert fast.effects[0, 0].max() > 1e-4 and fast.effects[1, 1].max() > 1e-4  # guard


@pytest.mark.parametrize("name", list(BUILDERS))
def test_gathered_forward_equals_the_dense_forward(name):
    model = _model(name)
    assert set(gather_sites(model)[0]) == set(range(len(model.inputs)))
    codes = [_codes(i, n=9) for i in range(len(model.inputs))]
    want = compiled_forward(model)([one_hot(c, F) for c in codes])
    got = compiled_forward(model, (F,) * len(codes))(codes)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_one_hot_detection_and_codes():
    x = one_hot(np.array([[0, -1, 6], [2, 2, -1]]), F)
    np.testing.assert_array_equal(one_hot_codes(x), [[0, -1, 6], [2, 2, -1]])
    assert one_hot_codes(x * 0.5) is None  # values other than 0 and 1
    two = x.copy()
    two[0, 1, 3] = 1.0  # a row with one 1 ...
    two[0, 0, 4] = 1.0  # ... and a row with two
    assert one_hot_codes(two) is None
    assert one_hot_codes(x.astype(np.int32)) is None  # integer arrays are token ids
    coded = OneHot(one_hot_codes(x), F)
    np.testing.assert_array_equal(coded[0:2], x)


def test_cli_dense_path_switch(tmp_path):
    """`probe attribute --dense-path` keeps one-hot inputs on the dense path: no gathered
    layers in its params, the default command's numbers to float32 rounding."""
    import json

    from click.testing import CliRunner

    from probes.cli import main

    model = _model("concat")
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **_inputs(model))
    args = ["attribute", "--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "d.npz"),
            "--steps", "4", "--no-compare", "--json"]
    runs = [CliRunner().invoke(main, args + extra) for extra in ([], ["--dense-path"])]
    assert [r.exit_code for r in runs] == [0, 0], runs[1].output
    fast, dense = (json.loads(r.stdout) for r in runs)
    assert fast["params"]["one_hot"] == {"tweet_a": "shared_lstm", "tweet_b": "shared_lstm"}
    assert dense["params"]["one_hot"] == {}
    assert "one-hot path turned off" in runs[1].stderr
    got, want = np.array(fast["effect"]), np.array(dense["effect"])
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 rounding of two summations
    assert np.all(want > 1e-4)  # guard: every cell of concat moves
