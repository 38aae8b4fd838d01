"""Kinds of Keras model the functional zoo (tests/zoo.py) lacks (issue 27, item 5): Sequential,
subclassed, string features through preprocessing layers, a shared attention block. Same
conventions as tests/zoo.py: a Specimen(model, data, expected), weights from a seeded generator,
N = 64 samples, verdicts structural_zero / zero / depends; `check` measures every cell.

Heads and inputs are named as the probes name them: a dict by its keys, a layer's output by the
layer's name, a Sequential's input as Keras named it ("input_layer" or "input_layer_K"). A model
called on a list and returning a list (subclassed, no names) uses input_K / output_K, and its
`data` and `expected` keep the call's order.

JAX: a model with string inputs builds (and loads from a file saved under TensorFlow), but
calling it raises TypeError "data type 'string' not understood" and predict ValueError
"Invalid dtype: str..."; IntegerLookup inside a model runs eagerly but not under jax.jit or
jax.grad. The lookup layers work eagerly outside a model. kind_structured(split=True) and
kind_text_pair(split=True) therefore return the numeric part, the same weights, with the
strings already turned into ids / one-hot by those layers: same input names, same truths.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from tests.zoo import N, Specimen, _dense_rows, _set_weights


def _init(model, rng, gain: float = 1.0):
    """tests.zoo._set_weights, then LayerNormalization scales to one (zero would erase all)."""
    _set_weights(model, rng, gain)
    for v in model.weights:
        if v.path.endswith("gamma"):
            v.assign(np.ones(tuple(v.shape), v.dtype))


def _input_names(model) -> list[str]:
    """Input names in `model.inputs` order (a dict of inputs comes sorted by key)."""
    return [t._keras_history.operation.name for t in model.inputs]


def kind_sequential(seed: int = 0) -> Specimen:
    """The first model of the Keras guide "The Sequential model" (keras.io/guides/
    sequential_model), with the `keras.Input(shape=...)` the guide puts first; 6 features.

    Planted inside the one input: layer1's rows for features 4 and 5 are zero (a truth for
    feature-level attribution); the input as a whole depends.
    """
    model = keras.Sequential([keras.Input(shape=(6,)),
                              layers.Dense(8, activation="relu", name="layer1"),
                              layers.Dense(4, activation="relu", name="layer2"),
                              layers.Dense(1, name="layer3")])
    rng = np.random.default_rng(seed)
    _init(model, rng)
    _dense_rows(model.get_layer("layer1"), slice(4, 6))
    name = _input_names(model)[0]  # "input_layer[_K]"
    data = {name: rng.normal(size=(N, 6)).astype("float32")}  # (N, 6)
    return Specimen(model, data, {"layer3": {name: "depends"}})


def kind_sequential_encoder(seed: int = 0) -> Specimen:
    """The same guide's "a Sequential model as a layer": one Sequential encoder called on two
    inputs of a functional model (two call sites, one set of weights); head_a on both
    encodings, head_b on input_b's only.

    Planted: (head_b, input_a) has no path -> structural_zero.
    """
    encoder = keras.Sequential([keras.Input(shape=(5,)),
                                layers.Dense(8, activation="tanh", name="enc1"),
                                layers.Dense(4, activation="tanh", name="enc2")], name="encoder")
    input_a = keras.Input(shape=(5,), name="input_a")
    input_b = keras.Input(shape=(5,), name="input_b")
    encoded_a, encoded_b = encoder(input_a), encoder(input_b)  # (N, 4) each
    head_a = layers.Dense(1, name="head_a")(layers.concatenate([encoded_a, encoded_b]))
    head_b = layers.Dense(2, name="head_b")(encoded_b)
    model = keras.Model([input_a, input_b], [head_a, head_b])
    rng = np.random.default_rng(seed)
    _init(model, rng)
    data = {name: rng.normal(size=(N, 5)).astype("float32") for name in ("input_a", "input_b")}
    expected = {"head_a": {"input_a": "depends", "input_b": "depends"},
                "head_b": {"input_a": "structural_zero", "input_b": "depends"}}
    return Specimen(model, data, expected)


@keras.saving.register_keras_serializable(package="zoo_kinds")
class PairModel(keras.Model):
    """After the Keras guide "Making new layers and models via subclassing" (keras.io/guides/
    making_new_layers_and_models_via_subclassing): layers made in __init__, used in call.
    call({"a": (N, 5), "b": (N, 5)}) -> {"h1": (N, 1), "h2": (N, 1)}; one Dense encodes both."""

    def __init__(self, units: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.encoder = layers.Dense(units, activation="tanh", name="encoder")
        self.h1 = layers.Dense(1, name="h1")
        self.h2 = layers.Dense(1, name="h2")

    def call(self, inputs):
        encoded_a, encoded_b = self.encoder(inputs["a"]), self.encoder(inputs["b"])
        both = keras.ops.concatenate([encoded_a, encoded_b], axis=-1)  # (N, 2 * units)
        return {"h1": self.h1(both), "h2": self.h2(encoded_b)}  # h2 never reads a

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="zoo_kinds")
class ListPairModel(PairModel):
    """PairModel called on a list: call([a, b]) -> [output_0 (N, 1), output_1 (N, 1)]."""

    def call(self, inputs):
        a, b = inputs
        out = super().call({"a": a, "b": b})
        return [out["h1"], out["h2"]]


def kind_subclassed(seed: int = 0, as_list: bool = False) -> Specimen:
    """A subclassed two-input, two-head model (PairModel; ListPairModel with as_list), built by
    one call on its data. Load a saved one with custom_objects=CUSTOM_OBJECTS.

    Planted: h2 never reads a in its code; a subclassed model has no graph, so the truth the
    probes can reach for (h2, a) is zero, not structural_zero.
    """
    rng = np.random.default_rng(seed)
    x = {k: rng.normal(size=(N, 5)).astype("float32") for k in ("a", "b")}  # (N, 5) each
    if as_list:
        model = ListPairModel(name="list_pair_model")
        model([x["a"], x["b"]])
        data, heads, names = {"input_0": x["a"], "input_1": x["b"]}, ("output_0", "output_1"), \
            ("input_0", "input_1")
    else:
        model = PairModel(name="pair_model")
        model(x)
        data, heads, names = x, ("h1", "h2"), ("a", "b")
    _init(model, rng)
    _dense_rows(model.h1, slice(0, model.units), 1.7)  # a's rows: a and b near even in h1
    expected = {heads[0]: {names[0]: "depends", names[1]: "depends"},
                heads[1]: {names[0]: "zero", names[1]: "depends"}}
    return Specimen(model, data, expected)


CUSTOM_OBJECTS = {"PairModel": PairModel, "ListPairModel": ListPairModel}

THAL = ["fixed", "normal", "reversible"]  # the example's string feature
NUMERIC = ("age", "chol", "thalach")


def kind_structured(seed: int = 0, split: bool = False) -> Specimen:
    """After the Keras example "Structured data classification from scratch" (keras.io/
    examples/structured_data/structured_data_classification_from_scratch), its in-model
    preprocessing: inputs of shape (1,), `thal` (string) through StringLookup one-hot, `ca`
    (int) through IntegerLookup one-hot, numeric features through Normalization (mean and
    variance of the data), concatenated; a Dense hidden layer per head.

    Planted: risk_hidden's rows for chol are zero -> (risk, chol) zero; `other` reads a
    concatenation without thalach -> (other, thalach) structural_zero.
    With split, the model takes thal (N, 4) and ca (N, 5) one-hot (for JAX, see the module).
    """
    rng = np.random.default_rng(seed)
    raw = {"thal": rng.choice(THAL, size=(N, 1)),  # (N, 1) <U10
           "ca": rng.integers(0, 4, size=(N, 1)).astype("int64"),
           "age": rng.normal(55, 9, size=(N, 1)).astype("float32"),
           "chol": rng.normal(245, 50, size=(N, 1)).astype("float32"),
           "thalach": rng.normal(150, 22, size=(N, 1)).astype("float32")}
    lookups = {"thal": layers.StringLookup(vocabulary=THAL, output_mode="one_hot"),  # (N, 4)
               "ca": layers.IntegerLookup(vocabulary=[0, 1, 2, 3], output_mode="one_hot")}
    norms = {k: layers.Normalization(mean=raw[k].mean(), variance=raw[k].var()) for k in NUMERIC}
    risk_hidden = layers.Dense(8, activation="relu", name="risk_hidden")
    risk = layers.Dense(1, activation="sigmoid", name="risk")
    other_hidden = layers.Dense(8, activation="relu", name="other_hidden")
    other = layers.Dense(1, activation="sigmoid", name="other")

    def heads(encoded):  # {feature: (N, width)} -> [risk (N, 1), other (N, 1)]
        # widths: thal 4, ca 5, age 1, chol 1, thalach 1 -> chol is column 10
        all_features = layers.concatenate([encoded[k] for k in ("thal", "ca", *NUMERIC)])
        some = layers.concatenate([encoded[k] for k in ("thal", "ca", "age", "chol")])
        return [risk(risk_hidden(all_features)), other(other_hidden(some))]

    string_in = {"thal": keras.Input(shape=(1,), name="thal", dtype="string"),
                 "ca": keras.Input(shape=(1,), name="ca", dtype="int64")}
    num_in = {k: keras.Input(shape=(1,), name=k) for k in NUMERIC}
    onehot_in = {"thal": keras.Input(shape=(4,), name="thal"),
                 "ca": keras.Input(shape=(5,), name="ca")}
    encoded = {k: norms[k](num_in[k]) for k in NUMERIC}
    numeric = keras.Model({**onehot_in, **num_in},
                          heads({**onehot_in, **encoded}), name="structured_numeric")
    _init(numeric, np.random.default_rng([seed, 1]))
    columns = {k: keras.ops.convert_to_numpy(lookups[k](raw[k])).astype("float32")
               for k in lookups}  # one-hot
    split_data = {k: columns.get(k, raw[k]) for k in _input_names(numeric)}
    rows = {"thal": slice(0, 4), "ca": slice(4, 9), "age": slice(9, 10), "chol": slice(10, 11),
            "thalach": slice(11, 12)}  # of both concatenations (`some` stops at chol)
    probe = Specimen(numeric, split_data, None)
    for _ in range(4):  # one-hot rows move a head less than normalized ones: even them out
        runs = [shuffle_effects(probe, np.random.default_rng([seed, 2, r]), heads=("risk", "other"))
                for r in range(4)]  # several permutations: one is noisy for a 3-class feature
        for head, layer in (("risk", risk_hidden), ("other", other_hidden)):
            kept = {k: np.mean([run[head][k] for run in runs]) for k in rows
                    if k in runs[0][head] and runs[0][head][k] > 0}
            for k, e in kept.items():
                _dense_rows(layer, rows[k], np.mean(list(kept.values())) / e)
    _dense_rows(risk_hidden, rows["chol"])  # planted after the evening out
    expected = {"risk": {"thal": "depends", "ca": "depends", "age": "depends",
                         "chol": "zero", "thalach": "depends"},
                "other": {"thal": "depends", "ca": "depends", "age": "depends",
                          "chol": "depends", "thalach": "structural_zero"}}
    if split:
        return Specimen(numeric, split_data, expected)
    model = keras.Model({**string_in, **num_in},
                        heads({**{k: lookups[k](string_in[k]) for k in lookups}, **encoded}),
                        name="structured")
    return Specimen(model, {k: raw[k] for k in _input_names(model)}, expected)


WORDS = ("the cat dog sat ran on mat log fast slow red blue big small why how does it").split()


def _sentences(rng, n: int) -> np.ndarray:
    """(n, 1) unicode sentences of 3 to 9 words from WORDS."""
    return np.array([[" ".join(rng.choice(WORDS, size=rng.integers(3, 10)))] for _ in range(n)])


def kind_text_pair(seed: int = 0, split: bool = False) -> Specimen:
    """After the Keras example "Text classification from scratch" (keras.io/examples/nlp/
    text_classification_from_scratch): raw strings through TextVectorization (vocabulary set,
    output_sequence_length 12), an Embedding, GlobalAveragePooling1D; here ONE vectorizer and
    ONE embedding shared by question_a and question_b. `same` reads both, `topic_a` a only.

    Planted: (topic_a, question_b) has no path -> structural_zero.
    With split, the model takes the (N, 12) int32 token ids (for JAX, see the module).
    """
    rng = np.random.default_rng(seed)
    raw = {"question_a": _sentences(rng, N), "question_b": _sentences(rng, N)}  # (N, 1) <U..
    vectorize = layers.TextVectorization(output_sequence_length=12, vocabulary=list(WORDS),
                                         name="vectorize")
    embedding = layers.Embedding(len(WORDS) + 2, 8, name="shared_embedding")  # + pad, OOV
    pool = layers.GlobalAveragePooling1D(name="pool")
    same = layers.Dense(1, activation="sigmoid", name="same")
    topic_a = layers.Dense(3, activation="softmax", name="topic_a")

    def heads(ids_a, ids_b):  # (N, 12) ids each -> [same (N, 1), topic_a (N, 3)]
        pooled_a, pooled_b = pool(embedding(ids_a)), pool(embedding(ids_b))  # (N, 8) each
        return [same(layers.concatenate([pooled_a, pooled_b])), topic_a(pooled_a)]

    ids_in = [keras.Input(shape=(12,), dtype="int32", name=k) for k in raw]
    numeric = keras.Model(ids_in, heads(*ids_in), name="text_pair_numeric")
    _init(numeric, np.random.default_rng([seed, 1]))
    expected = {"same": {"question_a": "depends", "question_b": "depends"},
                "topic_a": {"question_a": "depends", "question_b": "structural_zero"}}
    if split:
        data = {k: keras.ops.convert_to_numpy(vectorize(v)).astype("int32")
                for k, v in raw.items()}
        return Specimen(numeric, data, expected)
    text_in = [keras.Input(shape=(1,), dtype="string", name=k) for k in raw]
    model = keras.Model(text_in, heads(*(vectorize(t) for t in text_in)), name="text_pair")
    return Specimen(model, raw, expected)


def kind_attention_pair(seed: int = 0) -> Specimen:
    """After the Keras example "Text classification with Transformer" (keras.io/examples/nlp/
    text_classification_with_transformer): its TransformerBlock (MultiHeadAttention, residual +
    LayerNormalization, a two-Dense feed-forward, residual + LayerNormalization; dropout left
    out) as a functional block called on two float sequences (two call sites, one set of
    weights), each pooled by GlobalAveragePooling1D.

    Planted: (left, seq_b) has no path -> structural_zero; gated's rows for seq_b are zero ->
    (gated, seq_b) zero.
    """
    steps, dim = 5, 4
    block_in = keras.Input(shape=(steps, dim))
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=dim)(block_in, block_in)
    out1 = layers.LayerNormalization(epsilon=1e-6)(block_in + attention)  # (N, T, D)
    ffn = layers.Dense(dim)(layers.Dense(8, activation="relu")(out1))
    block = keras.Model(block_in, layers.LayerNormalization(epsilon=1e-6)(out1 + ffn),
                        name="transformer_block")
    seq_a = keras.Input(shape=(steps, dim), name="seq_a")
    seq_b = keras.Input(shape=(steps, dim), name="seq_b")
    pool = layers.GlobalAveragePooling1D(name="pool")
    pooled_a, pooled_b = pool(block(seq_a)), pool(block(seq_b))  # (N, D) each
    both = layers.concatenate([pooled_a, pooled_b])  # (N, 2D)
    joint = layers.Dense(1, name="joint")(both)
    left = layers.Dense(2, name="left")(pooled_a)
    gated = layers.Dense(1, name="gated")(both)
    model = keras.Model([seq_a, seq_b], [joint, left, gated])
    rng = np.random.default_rng(seed)
    _init(model, rng)
    _dense_rows(model.get_layer("gated"), slice(dim, 2 * dim))  # the seq_b rows
    data = {k: rng.normal(size=(N, steps, dim)).astype("float32") for k in ("seq_a", "seq_b")}
    expected = {"joint": {"seq_a": "depends", "seq_b": "depends"},
                "left": {"seq_a": "depends", "seq_b": "structural_zero"},
                "gated": {"seq_a": "depends", "seq_b": "zero"}}
    return Specimen(model, data, expected)


KINDS = {"sequential": kind_sequential, "sequential_encoder": kind_sequential_encoder,
         "subclassed": kind_subclassed, "subclassed_list": lambda: kind_subclassed(as_list=True),
         "structured": kind_structured, "text_pair": kind_text_pair,
         "attention_pair": kind_attention_pair}


def _outputs(specimen: Specimen, data: dict, heads=None) -> dict:
    """{head: (N, ...) array} of the model on `data` (dict, list or single array, as it takes);
    heads in output order, those of `expected` unless given."""
    model, heads = specimen.model, list(heads or specimen.expected)
    arrays = list(data.values())
    if isinstance(model, ListPairModel):
        x = arrays
    elif isinstance(model, PairModel) or isinstance(getattr(model, "_inputs_struct", None), dict):
        x = data  # called on a dict
    else:
        x = arrays if len(arrays) > 1 else arrays[0]  # a Sequential takes one array
    out = model(x)
    if isinstance(out, dict):
        return {h: keras.ops.convert_to_numpy(out[h]) for h in heads}
    out = out if isinstance(out, (list, tuple)) else [out]
    return {h: keras.ops.convert_to_numpy(o) for h, o in zip(heads, out)}


def shuffle_effects(specimen: Specimen, rng, heads=None) -> dict:
    """{head: {input: mean |output change|}} when that input alone is permuted across samples."""
    base = _outputs(specimen, specimen.data, heads)
    effects = {h: {} for h in base}
    for name, x in specimen.data.items():
        moved = _outputs(specimen, {**specimen.data, name: x[rng.permutation(len(x))]}, heads)
        for h in effects:
            effects[h][name] = float(np.mean(np.abs(moved[h] - base[h])))
    return effects


def check(specimen: Specimen, rng) -> dict:
    """{head: {input: share}}; raises AssertionError unless every zero / structural_zero effect
    is exactly 0.0 and every depends share (effect / sum over inputs) is at least 0.15."""
    shares = {}
    for h, row in shuffle_effects(specimen, rng).items():
        total = sum(row.values())
        shares[h] = {i: e / total for i, e in row.items()}
        for i, e in row.items():
            verdict = specimen.expected[h][i]
            assert (e == 0.0) if verdict != "depends" else shares[h][i] >= 0.15, (h, i, e, verdict)
    return shares
