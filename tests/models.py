"""Tiny hand-wired models with known dependency matrices (shared by several tests)."""

import dataclasses

import keras
import numpy as np
from keras import layers

T, F = 4, 3


def three_by_three(named: bool = True):
    """3 inputs, 3 heads. Known matrix (rows heads, columns inputs):
        h_ab:   x1 yes, x2 yes, x3 no path
        h_b:    x1 no path, x2 yes, x3 no path
        h_zero: x1 yes, x2 no path, x3 path with zero weights -> exactly 0.0
    With named=False every layer keeps Keras' default name (input_layer, dense_1, ...).
    """
    def name(n):
        return n if named else None

    x1, x2, x3 = (keras.Input((T, F), name=name(n)) for n in ("x1", "x2", "x3"))
    flat = layers.Flatten(name=name("flatten"))
    f1, f2, f3 = flat(x1), flat(x2), flat(x3)  # one shared Flatten, three call sites
    # Seeded: the same weights whatever ran before (the suite's order), and so the same verdicts.
    h_ab = layers.Dense(1, activation="sigmoid", name=name("h_ab"),
                        kernel_initializer=keras.initializers.GlorotUniform(seed=1))(
        layers.concatenate([f1, f2]))
    h_b = layers.Dense(1, activation="sigmoid", name=name("h_b"),
                       kernel_initializer=keras.initializers.GlorotUniform(seed=2))(f2)
    zero_dense = layers.Dense(1, activation="sigmoid", name=name("h_zero"))
    h_zero = zero_dense(layers.concatenate([f1, f3]))
    model = keras.Model([x1, x2, x3], [h_ab, h_b, h_zero])
    w = np.random.default_rng(0).normal(size=(2 * T * F, 1)).astype("float32")
    w[T * F:] = 0.0  # the x3 half of h_zero's kernel
    zero_dense.set_weights([w, np.zeros(1, "float32")])
    return model


KNOWN_3x3 = [["depends", "depends", "structural_zero"],
             ["structural_zero", "depends", "structural_zero"],
             ["depends", "structural_zero", "zero"]]


def unused_input():
    """2 inputs, 1 head reading only the first: the second reaches no head."""
    a, b = keras.Input((T, F), name="used"), keras.Input((T, F), name="unused")
    out = layers.Dense(1, activation="sigmoid", name="head")(layers.Flatten()(a))
    return keras.Model([a, b], out)


def token_model(vocab: int = 10, steps: int = 6):
    """Integer token inputs through one shared Embedding and LSTM; separate heads."""
    a = keras.Input((steps,), dtype="int32", name="tokens_a")
    b = keras.Input((steps,), dtype="int32", name="tokens_b")
    embed = layers.Embedding(vocab, 4, name="shared_embedding")
    lstm = layers.LSTM(3, name="shared_lstm")
    ea, eb = lstm(embed(a)), lstm(embed(b))
    return keras.Model([a, b], [layers.Dense(1, activation="sigmoid", name="head_a")(ea),
                                layers.Dense(1, activation="sigmoid", name="head_b")(eb)])


def random_inputs(model, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for t in model.inputs:
        shape = (n,) + tuple(t.shape)[1:]
        name = t._keras_history.operation.name
        out[name] = (rng.integers(0, 10, size=shape).astype("int32") if "int" in str(t.dtype)
                     else rng.normal(size=shape).astype("float32"))
    return out


def save_three_by_three(directory, n: int):
    """Writes three_by_three() as model.keras and n random samples as data.npz."""
    model = three_by_three()
    model.save(directory / "model.keras")
    np.savez(directory / "data.npz", **random_inputs(model, n))
    return directory


# The text of a module with a custom layer (not registered with Keras), for --custom-module.
SCALE_MODULE = '''
import keras


class Scale(keras.layers.Layer):
    """A custom layer (not registered with Keras): x * w, one weight per feature."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w
'''


def same_result(full, merged):
    """Every field of two results equal: arrays bit for bit (NaN as NaN) and of one dtype,
    params and names exactly."""
    for f in dataclasses.fields(full):
        a, b = getattr(full, f.name), getattr(merged, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b, a, err_msg=f.name)
            assert a.dtype == b.dtype, f.name
        elif isinstance(a, tuple) and a and isinstance(a[0], np.ndarray):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(y, x, err_msg=f.name)
        else:
            assert a == b, (f.name, a, b)
