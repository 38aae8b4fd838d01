"""A zoo of Keras models written by other people, each with a planted truth.

Every builder returns a Specimen: the model (weights set by hand from a seeded generator, so
nothing depends on Keras' global seed), its data ({input name: (N, ...) array}) and the
verdict every (head, input) cell must get, {head: {input: verdict}}:
  structural_zero  no path in the graph from the input to the head;
  zero             a path exists but the weights carry nothing (planted by zeroing rows);
  depends          everything else (weight scales chosen so every input holds well over the
                   5% share the decision rule asks for, on 64 samples).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
from keras import layers

N = 64  # samples of each data set


class Specimen(NamedTuple):
    model: keras.Model
    data: dict  # {input name: (N, ...) array}
    expected: dict  # {head: {input: verdict}}


def _set_weights(model, rng, gain: float = 1.0):
    """Every variable of `model` from `rng`: embeddings N(0, 1), kernels N(0, gain / fan_in),
    biases zero. Shared layers and nested models hold one set of variables each."""
    for v in model.weights:
        shape = tuple(v.shape)
        name = v.path.split("/")[-1]
        if "embeddings" in name:
            value = rng.normal(size=shape)
        elif "kernel" in name:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(scale=gain / np.sqrt(fan_in), size=shape)
        else:
            value = np.zeros(shape)
        v.assign(value.astype(v.dtype))


def _dense_rows(layer, rows: slice, scale: float | None = None):
    """Zeroes (scale None) or rescales the kernel rows `rows` of a Dense layer."""
    kernel, bias = layer.get_weights()
    kernel[rows] = 0.0 if scale is None else kernel[rows] * scale
    layer.set_weights([kernel, bias])


def _tokens(rng, n, steps, vocab, *, min_len=None, dtype="int32"):
    """Token ids in [1, vocab); with min_len, random lengths post-padded with 0."""
    ids = rng.integers(1, vocab, size=(n, steps))
    if min_len is not None:
        lengths = rng.integers(min_len, steps + 1, size=n)
        ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return ids.astype(dtype)


def ticket_model(seed: int = 0) -> Specimen:
    """The Keras functional-API guide's ticket classifier ("Models with multiple inputs and
    outputs", keras.io/guides/functional_api), its code kept, its sizes shrunk: float32 token
    ids as the guide declares them, two Embeddings, two LSTMs, dict outputs.

    Planted: the department kernel rows that read `tags` are zero -> (department, tags) zero.
    """
    num_tags = 6  # Number of unique issue tags
    num_words = 50  # Size of vocabulary obtained when preprocessing text data
    num_departments = 4  # Number of departments for predictions

    title_input = keras.Input(shape=(None,), name="title")  # Variable-length sequence of ints
    body_input = keras.Input(shape=(None,), name="body")  # Variable-length sequence of ints
    tags_input = keras.Input(shape=(num_tags,), name="tags")  # Binary vectors of size num_tags

    # Embed each word in the title into a 8-dimensional vector
    title_features = layers.Embedding(num_words, 8)(title_input)
    # Embed each word in the text into a 8-dimensional vector
    body_features = layers.Embedding(num_words, 8)(body_input)

    # Reduce sequence of embedded words in the title into a single 8-dimensional vector
    title_features = layers.LSTM(8)(title_features)
    # Reduce sequence of embedded words in the body into a single 4-dimensional vector
    body_features = layers.LSTM(4)(body_features)

    # Merge all available features into a single large vector via concatenation
    x = layers.concatenate([title_features, body_features, tags_input])

    # Stick a logistic regression for priority prediction on top of the features
    priority_pred = layers.Dense(1, name="priority")(x)
    # Stick a department classifier on top of the features
    department_pred = layers.Dense(num_departments, name="department")(x)

    # Instantiate an end-to-end model predicting both priority and department
    model = keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )
    rng = np.random.default_rng(seed)
    _set_weights(model, rng)
    _dense_rows(model.get_layer("department"), slice(12, 18))  # the tags rows
    data = {"title": _tokens(rng, N, 10, num_words, dtype="float32"),
            "body": _tokens(rng, N, 10, num_words, dtype="float32"),
            "tags": rng.integers(0, 2, size=(N, num_tags)).astype("float32")}
    expected = {"priority": {"title": "depends", "body": "depends", "tags": "depends"},
                "department": {"title": "depends", "body": "depends", "tags": "zero"}}
    return Specimen(model, data, expected)


def shared_vision_model(seed: int = 0) -> Specimen:
    """The older Keras functional guide's "shared vision model" (keras.io/getting-started/
    functional-api-guide, Keras 2): one vision Model (Conv2D, Conv2D, MaxPooling2D, Flatten)
    called on two digits, a sigmoid head on both encodings; 8x8 images, 4 filters. Added: a
    softmax head `digit_a_class` on digit_a's encoding only.

    Planted: (digit_a_class, digit_b) has no path -> structural_zero.
    """
    # First, define the vision modules
    digit_input = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(4, (3, 3))(digit_input)
    x = layers.Conv2D(4, (3, 3))(x)
    x = layers.MaxPooling2D((2, 2))(x)
    out = layers.Flatten()(x)
    vision_model = keras.Model(digit_input, out)

    # Then define the tell-digits-apart model
    digit_a = keras.Input(shape=(8, 8, 1), name="digit_a")
    digit_b = keras.Input(shape=(8, 8, 1), name="digit_b")

    # The vision model will be shared, weights and all
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)

    concatenated = layers.concatenate([out_a, out_b])
    out = layers.Dense(1, activation="sigmoid", name="same_digit")(concatenated)
    a_class = layers.Dense(3, activation="softmax", name="digit_a_class")(out_a)

    model = keras.Model([digit_a, digit_b], [out, a_class])
    rng = np.random.default_rng(seed)
    _set_weights(model, rng)
    data = {name: rng.random((N, 8, 8, 1)).astype("float32") for name in ("digit_a", "digit_b")}
    expected = {"same_digit": {"digit_a": "depends", "digit_b": "depends"},
                "digit_a_class": {"digit_a": "depends", "digit_b": "structural_zero"}}
    return Specimen(model, data, expected)


def masked_bidirectional_model(seed: int = 0) -> Specimen:
    """Two padded token sequences through ONE masked Embedding and ONE Bidirectional LSTM
    (the masking guide's `Embedding(..., mask_zero=True)` and the RNN guide's
    `Bidirectional(LSTM(...))`, shared as in the functional guide's shared-layers tweets);
    a softmax head on both encodings, a regression head on text_a's only.

    Planted: (score, text_b) has no path -> structural_zero.
    """
    vocab, steps = 20, 10
    text_a = keras.Input(shape=(steps,), dtype="int32", name="text_a")
    text_b = keras.Input(shape=(steps,), dtype="int32", name="text_b")
    embedding = layers.Embedding(vocab, 8, mask_zero=True, name="shared_embedding")
    encoder = layers.Bidirectional(layers.LSTM(4), name="shared_encoder")
    encoded_a = encoder(embedding(text_a))
    encoded_b = encoder(embedding(text_b))
    merged = layers.concatenate([encoded_a, encoded_b])
    topic = layers.Dense(3, activation="softmax", name="topic")(merged)
    score = layers.Dense(1, name="score")(encoded_a)
    model = keras.Model([text_a, text_b], [topic, score])
    rng = np.random.default_rng(seed)
    _set_weights(model, rng)
    data = {name: _tokens(rng, N, steps, vocab, min_len=3) for name in ("text_a", "text_b")}
    expected = {"topic": {"text_a": "depends", "text_b": "depends"},
                "score": {"text_a": "depends", "text_b": "structural_zero"}}
    return Specimen(model, data, expected)


def time_distributed_model(seed: int = 0) -> Specimen:
    """TimeDistributed as in its API example (keras.io/api/layers/recurrent_layers/
    time_distributed: one layer applied to every step), here a Dense shared by two sensor
    sequences, each averaged over time; two heads on the concatenation.

    Planted: the `level` kernel rows that read sensor_b are zero -> (level, sensor_b) zero.
    """
    steps, features = 6, 3
    sensor_a = keras.Input(shape=(steps, features), name="sensor_a")
    sensor_b = keras.Input(shape=(steps, features), name="sensor_b")
    per_step = layers.TimeDistributed(layers.Dense(8, activation="tanh"), name="per_step")
    pool = layers.GlobalAveragePooling1D(name="pool")
    merged = layers.concatenate([pool(per_step(sensor_a)), pool(per_step(sensor_b))])
    level = layers.Dense(1, name="level")(merged)
    state = layers.Dense(2, activation="softmax", name="state")(merged)
    model = keras.Model([sensor_a, sensor_b], [level, state])
    rng = np.random.default_rng(seed)
    _set_weights(model, rng)
    _dense_rows(model.get_layer("level"), slice(8, 16))  # the sensor_b rows
    data = {name: rng.normal(size=(N, steps, features)).astype("float32")
            for name in ("sensor_a", "sensor_b")}
    expected = {"level": {"sensor_a": "depends", "sensor_b": "zero"},
                "state": {"sensor_a": "depends", "sensor_b": "depends"}}
    return Specimen(model, data, expected)


ZOO = {"ticket": ticket_model, "shared_vision": shared_vision_model,
       "masked_bidirectional": masked_bidirectional_model,
       "time_distributed": time_distributed_model}


def save(specimen: Specimen, directory) -> tuple[Path, Path]:
    """Writes the model as model.keras and its data as data.npz (keys: input names)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path, data_path = directory / "model.keras", directory / "data.npz"
    specimen.model.save(model_path)
    np.savez(data_path, **specimen.data)
    return model_path, data_path
