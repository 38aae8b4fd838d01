"""The models of the question: two tweets through ONE shared LSTM, two sigmoid heads.

- `concat`: both heads read `concatenate([encoded_a, encoded_b])`.
- `separate`: head_1 reads encoded_a only, head_2 encoded_b only; the tasks share nothing but
  the LSTM's weights.
- `concat_mlp`: a hidden Dense between the concatenation and the heads. A Dense head on the
  concatenation has logit w_a . h(a) + w_b . h(b) + c = f(a) + g(b), which cannot express
  interactions such as "same author"; the hidden layer can.
- `separate_untied`, `concat_untied`: the same models with one LSTM instance per tweet
  (`lstm_a`, `lstm_b`; same sizes, twice the encoder parameters), to measure what tying the
  encoder buys. In `separate_untied` the two heads share no weights at all; in `concat_untied`
  both heads still read both encoders through the concatenation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

VARIANTS = ("concat", "separate", "concat_mlp", "separate_untied", "concat_untied")
# Each untied variant -> its tied counterpart (the same model with one shared LSTM).
TIED = {"separate_untied": "separate", "concat_untied": "concat"}
INPUTS = ("tweet_a", "tweet_b")
HEADS = ("head_1", "head_2")


def build_model(variant: str, *, seq_len: int = 280, features: int = 256, units: int = 64,
                hidden: int = 64, seed: int = 0, learning_rate: float = 1e-3,
                clipnorm: float | None = 1.0,
                loss_weights: tuple[float, float] = (1.0, 1.0)) -> keras.Model:
    """Builds and compiles one variant.

    Args:
        variant: one of VARIANTS.
        seq_len: input steps T of each tweet, shape (T, F).
        features: one-hot width F of each step.
        units: size of the shared LSTM's state (of each LSTM in the untied variants).
        hidden: width of concat_mlp's hidden layer (ignored by the other variants).
        seed: seed of every initializer, so the same seed gives the same initial weights. An
            untied variant starts from its tied counterpart's weights (`lstm_a` from
            `shared_lstm`'s) plus a fresh `lstm_b`.
        learning_rate: RMSprop's learning rate.
        clipnorm: RMSprop's gradient clipping; clipping keeps full-size training stable.
        loss_weights: weight of each head's loss in the training loss (and the validation
            loss); (1, 0) trains head_1's task alone, with head_2 left at its initial weights.
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

    def lstm(name, kernel_seed, recurrent_seed):
        return layers.LSTM(units, name=name,
                           kernel_initializer=keras.initializers.GlorotUniform(seed=kernel_seed),
                           recurrent_initializer=keras.initializers.Orthogonal(
                               seed=recurrent_seed))

    base = TIED.get(variant, variant)
    first = (next(seeds), next(seeds))
    if variant in TIED:
        # lstm_b's seeds come from the end of the block, so lstm_a and the heads start where
        # the tied counterpart's shared_lstm and heads do.
        encoded_a = lstm("lstm_a", *first)(tweet_a)  # (batch, units)
        encoded_b = lstm("lstm_b", seed * 16 + 14, seed * 16 + 15)(tweet_b)
    else:
        shared_lstm = lstm("shared_lstm", *first)
        encoded_a = shared_lstm(tweet_a)  # (batch, units)
        encoded_b = shared_lstm(tweet_b)

    def head(name, x):
        return layers.Dense(1, activation="sigmoid", name=name,
                            kernel_initializer=init(keras.initializers.GlorotUniform))(x)

    if base == "separate":
        outputs = [head("head_1", encoded_a), head("head_2", encoded_b)]
    else:
        merged = layers.concatenate([encoded_a, encoded_b], axis=-1, name="merged")  # (batch, 2U)
        if base == "concat_mlp":
            merged = layers.Dense(hidden, activation="relu", name="hidden",
                                  kernel_initializer=init(keras.initializers.HeUniform))(merged)
        outputs = [head("head_1", merged), head("head_2", merged)]
    model = keras.Model(inputs=[tweet_a, tweet_b], outputs=outputs, name=variant)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate,
                                                     clipnorm=clipnorm),
                  loss={h: "binary_crossentropy" for h in HEADS},
                  loss_weights=dict(zip(HEADS, map(float, loss_weights))),
                  metrics={h: ["accuracy"] for h in HEADS})
    return model
