"""Paths from inputs to heads, beyond "does head h depend on input i".

- `decompose`: the exact split of each head's pre-activation over the call sites it
  concatenates (the shared LSTM on tweet_a and on tweet_b), plus the bias.
- `interaction`: whether a head combines two inputs additively (the interaction contrast).

Neither imports TensorFlow until it is called.
"""

from probes.methods.paths.decomposition import KINDS, Decomposition, HeadSplit, decompose
from probes.methods.paths.interaction import (
    VERDICTS,
    Interaction,
    InteractionSummary,
    interaction,
)

__all__ = ["KINDS", "VERDICTS", "Decomposition", "HeadSplit", "Interaction",
           "InteractionSummary", "decompose", "interaction"]
