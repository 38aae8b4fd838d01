"""The models of the question: two tweets through ONE shared LSTM, two sigmoid heads.

- `concat`: both heads read `concatenate([encoded_a, encoded_b])`.
- `separate`: head_1 reads encoded_a only, head_2 encoded_b only; the tasks share nothing but
  the LSTM's weights.
- `concat_mlp`: a hidden Dense between the concatenation and the heads. A Dense head on the
  concatenation has logit w_a . h(a) + w_b . h(b) + c = f(a) + g(b), which cannot express
  interactions such as "same author"; the hidden layer can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

VARIANTS = ("concat", "separate", "concat_mlp")
INPUTS = ("tweet_a", "tweet_b")
HEADS = ("head_1", "head_2")


def build_model(variant: str, *, seq_len: int = 280, features: int = 256, units: int = 64,
                hidden: int = 64, seed: int = 0, learning_rate: float = 1e-3,
                clipnorm: float | None = 1.0) -> keras.Model:
    """Builds and compiles one variant.

    Args:
        variant: one of VARIANTS.
        seq_len, features: input shape (T, F) of each tweet.
        units: size of the shared LSTM's state.
        hidden: width of concat_mlp's hidden layer (ignored by the other variants).
        seed: seed of every initializer, so the same seed gives the same initial weights.
        learning_rate, clipnorm: RMSprop settings; clipping keeps full-size training stable.
    Returns:
        A compiled functional model with inputs INPUTS and outputs HEADS, each (batch, 1).
    """
    if variant not in VARIANTS:
        raise ValueError(f"Expected a variant in {list(VARIANTS)}; received {variant!r}")
    import keras  # here, so that importing the names above needs no TensorFlow
    from keras import layers

    seeds = iter(range(seed * 16, seed * 16 + 16))

    def init(kind):
        return kind(seed=next(seeds))

    tweet_a = keras.Input(shape=(seq_len, features), name="tweet_a")
    tweet_b = keras.Input(shape=(seq_len, features), name="tweet_b")
    shared_lstm = layers.LSTM(units, name="shared_lstm",
                              kernel_initializer=init(keras.initializers.GlorotUniform),
                              recurrent_initializer=init(keras.initializers.Orthogonal))
    encoded_a = shared_lstm(tweet_a)  # (batch, units)
    encoded_b = shared_lstm(tweet_b)

    def head(name, x):
        return layers.Dense(1, activation="sigmoid", name=name,
                            kernel_initializer=init(keras.initializers.GlorotUniform))(x)

    if variant == "separate":
        outputs = [head("head_1", encoded_a), head("head_2", encoded_b)]
    else:
        merged = layers.concatenate([encoded_a, encoded_b], axis=-1, name="merged")  # (batch, 2U)
        if variant == "concat_mlp":
            merged = layers.Dense(hidden, activation="relu", name="hidden",
                                  kernel_initializer=init(keras.initializers.HeUniform))(merged)
        outputs = [head("head_1", merged), head("head_2", merged)]
    model = keras.Model(inputs=[tweet_a, tweet_b], outputs=outputs, name=variant)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate,
                                                     clipnorm=clipnorm),
                  loss={h: "binary_crossentropy" for h in HEADS},
                  metrics={h: ["accuracy"] for h in HEADS})
    return model
