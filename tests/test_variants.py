import numpy as np
import pytest

from mtl_models.variants import TIED, VARIANTS, build_model
from probes.model.graph import CallSite, structure

SMALL = dict(seq_len=5, features=4, units=3, hidden=6)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in TIED])  # untied: test_untied
def test_one_shared_lstm_instance_with_two_call_sites(variant):
    model = build_model(variant, **SMALL)
    lstms = [layer for layer in model.layers if type(layer).__name__ == "LSTM"]
    assert [layer.name for layer in lstms] == ["shared_lstm"]
    s = structure(model)
    assert s.shared == {"shared_lstm": 2}
    assert s.inputs == ("tweet_a", "tweet_b") and s.heads == ("head_1", "head_2")
    for head in s.heads:
        layer = model.get_layer(head)
        assert layer.units == 1 and layer.activation.__name__ == "sigmoid"


@pytest.mark.parametrize("variant,reach,lstm_calls", [
    ("concat", [[True, True], [True, True]], [{0, 1}, {0, 1}]),
    ("concat_mlp", [[True, True], [True, True]], [{0, 1}, {0, 1}]),
    ("separate", [[True, False], [False, True]], [{0}, {1}]),
])
def test_head_wiring_per_call_site(variant, reach, lstm_calls):
    s = structure(build_model(variant, **SMALL))
    np.testing.assert_array_equal(s.reach, reach)
    for head, calls in zip(s.heads, lstm_calls):
        assert {c.index for c in s.upstream[head] if c.layer == "shared_lstm"} == calls
    # The shared LSTM's call 0 reads tweet_a (model order), so separate's head_1 sees tweet_a.
    if variant == "separate":
        assert CallSite("shared_lstm", 0) in s.upstream["head_1"]


@pytest.mark.parametrize("variant,kernel_rows", [("concat", 6), ("separate", 3),
                                                 ("concat_mlp", 6)])
def test_layer_sizes_follow_the_parameters(variant, kernel_rows):
    model = build_model(variant, **SMALL)
    lstm = model.get_layer("shared_lstm")
    assert lstm.units == 3 and tuple(lstm.cell.kernel.shape) == (4, 12)  # 4 gates x units
    if variant == "concat_mlp":
        assert tuple(model.get_layer("hidden").kernel.shape) == (6, 6)
        assert tuple(model.get_layer("head_1").kernel.shape) == (6, 1)
    else:
        assert tuple(model.get_layer("head_1").kernel.shape) == (kernel_rows, 1)


def test_separate_head_1_is_blind_to_tweet_b():
    model = build_model("separate", **SMALL)
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 8, 5, 4), dtype=np.float32)
    out = model.predict({"tweet_a": a, "tweet_b": b}, verbose=0)
    out2 = model.predict({"tweet_a": a, "tweet_b": b[::-1]}, verbose=0)
    np.testing.assert_array_equal(out[0], out2[0])  # exact: no path from tweet_b
    assert np.abs(out[1] - out2[1]).max() > 1e-4  # head_2 does move (guard)


def test_same_seed_same_initial_weights():
    w1 = build_model("concat", seed=3, **SMALL).get_weights()
    w2 = build_model("concat", seed=3, **SMALL).get_weights()
    w3 = build_model("concat", seed=4, **SMALL).get_weights()
    for x, y in zip(w1, w2):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(w1[0], w3[0])


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match=r"Expected a variant in \['concat', 'separate'"):
        build_model("siamese")
