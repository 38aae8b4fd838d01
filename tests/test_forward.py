"""The partial pass (probes.engine.forward.compiled_partial): with one input altered and the rest of
the graph computed once at the samples, the heads get the whole pass's numbers."""

import numpy as np
import pytest

from mtl_models.variants import build_model
from probes.engine.forward import compiled_forward, compiled_partial, frontier_rows, run_all
from probes.model.graph import heads as graph_heads
from probes.model.graphrun import split_at
from tests import models as m, zoo


def _built(model):
    return model, list(m.random_inputs(model, 12).values())


def _zoo(name):
    specimen = zoo.ZOO[name]()
    return specimen.model, [np.asarray(x)[:12] for x in specimen.data.values()]


MODELS = {"concat": lambda: _built(build_model("concat", seq_len=6, features=5, units=3)),
          "separate": lambda: _built(build_model("separate", seq_len=6, features=5, units=3)),
          "three_by_three": lambda: _built(m.three_by_three()),
          **{name: (lambda name=name: _zoo(name)) for name in sorted(zoo.ZOO)}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_altered_input_gives_the_whole_pass(name):
    model, xs = MODELS[name]()
    heads = frozenset(h for h, _ in graph_heads(model))
    whole = compiled_forward(model, linear=heads)
    for i in range(len(model.inputs)):
        altered = list(xs)
        rolled = np.roll(xs[i], 1, axis=0)  # another sample's input i on every row
        altered[i] = rolled
        front_of, partial = compiled_partial(model, i, linear=heads)
        front = frontier_rows(front_of, xs, 256)
        got = [np.asarray(o, np.float64) for o in partial(altered, front)]
        want = run_all(whole, altered, 256)
        # Float32 passes of different row counts round alike here; 1e-6 covers the rest.
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.reshape(w.shape), w, rtol=1e-6, atol=1e-6)
        # Guard: input i reaches some head, and altering it moved a head (every input of
        # these models moves one, but three_by_three's x3, whose only path has zero weights).
        downstream, _ = split_at(model, i)
        assert downstream
        base = run_all(whole, xs, 256)
        moved = any(np.abs(w - b).max() > 1e-4 for w, b in zip(want, base))
        assert moved == ((name, i) != ("three_by_three", 2)), i


def test_the_frontier_of_the_question_is_the_other_tweets_encoding():
    model = build_model("concat", seq_len=6, features=5, units=3)
    for i in range(2):
        downstream, frontier = split_at(model, i)
        # tweet i's LSTM call, the concatenation and both heads run again; the other tweet's
        # LSTM call is computed once.
        assert len(downstream) == 4
        assert [node.operation.name for _, node in frontier] == ["shared_lstm"]
