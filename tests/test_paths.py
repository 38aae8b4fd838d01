import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras import layers
from numpy.testing import assert_allclose

from probes.cli import main
from probes.methods.paths import decompose, interaction
from probes.results import resultio

D = 3  # features of each input vector
W_SHARED = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]], "float32")  # (D, 2)
B_SHARED = np.array([0.1, -0.2], "float32")
W_HEAD = np.array([[0.5], [-1.0], [2.0], [0.25]], "float32")  # rows: z_a (2), z_b (2)
B_HEAD = np.array([0.3], "float32")
# Float32 forward passes against float64 hand arithmetic: ~1e-7 relative, so 1e-5 is safe.
RTOL, ATOL = 1e-5, 1e-6


def _ab():
    return keras.Input((D,), name="a"), keras.Input((D,), name="b")


def _shared(a, b):
    shared = layers.Dense(2, activation="tanh", name="shared")
    return shared, shared(a), shared(b)


def concat_model():
    """a, b -> one shared tanh Dense (2) -> concatenate -> sigmoid head; weights by hand."""
    a, b = _ab()
    shared, za, zb = _shared(a, b)
    head = layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model([a, b], head(layers.concatenate([za, zb], name="merged")))
    shared.set_weights([W_SHARED, B_SHARED])
    head.set_weights([W_HEAD, B_HEAD])
    return model


def mlp_model():
    """The same with a hidden tanh layer between the concatenation and the head."""
    a, b = _ab()
    shared, za, zb = _shared(a, b)
    hidden = layers.Dense(4, activation="tanh", name="hidden")
    head = layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model([a, b], head(hidden(layers.concatenate([za, zb]))))
    rng = np.random.default_rng(1)
    shared.set_weights([W_SHARED, B_SHARED])
    hidden.set_weights([rng.normal(size=(4, 4)).astype("float32"), np.zeros(4, "float32")])
    head.set_weights([W_HEAD, B_HEAD])
    return model


def separate_model():
    """head_a reads the shared layer's call on a only, head_b its call on b."""
    a, b = _ab()
    shared, za, zb = _shared(a, b)
    ha, hb = layers.Dense(1, activation="sigmoid", name="head_a"), layers.Dense(1, name="head_b")
    model = keras.Model([a, b], [ha(za), hb(zb)])
    shared.set_weights([W_SHARED, B_SHARED])
    ha.set_weights([W_HEAD[:2], B_HEAD])
    hb.set_weights([W_HEAD[2:], -B_HEAD])
    return model


def product_model():
    """head = sigmoid(2 * a * b + 0.5) for scalar a, b: its contrast is 2 (a - a')(b - b')."""
    a, b = keras.Input((1,), name="a"), keras.Input((1,), name="b")
    head = layers.Dense(1, activation="sigmoid", name="head")
    model = keras.Model([a, b], head(layers.Multiply()([a, b])))
    head.set_weights([np.array([[2.0]], "float32"), np.array([0.5], "float32")])
    return model


def _inputs(n=40, seed=0, dim=D):
    rng = np.random.default_rng(seed)
    a, b = (rng.normal(size=(n, dim)).astype("float32") for _ in range(2))
    a[0] = 0.0  # sample 0 has a hand-computed answer
    return {"a": a, "b": b}


def _by_hand(x):
    return np.tanh(x.astype(np.float64) @ W_SHARED + B_SHARED)  # (N, 2)


def test_concat_head_splits_into_the_hand_computed_terms():
    x = _inputs()
    split = decompose(concat_model(), x).splits[0]
    assert split.kind == "decomposed" and split.parts == ("shared@0", "shared@1")
    assert split.part_inputs == (("a",), ("b",))
    c_a, c_b = _by_hand(x["a"]) @ W_HEAD[:2, 0], _by_hand(x["b"]) @ W_HEAD[2:, 0]
    assert_allclose(split.contributions, np.stack([c_a, c_b]), rtol=RTOL, atol=ATOL)
    # a = 0: 0.5 tanh(0.1) - tanh(-0.2), by hand.
    assert_allclose(split.contributions[0, 0], 0.2472093175, rtol=RTOL)
    assert split.bias == pytest.approx(0.3, rel=1e-7)
    # The parts add up to the model's own logit (computed by Keras, not from the parts).
    assert_allclose(split.residual, 0.0, atol=ATOL)
    assert_allclose(split.logit, c_a + c_b + 0.3, rtol=RTOL, atol=ATOL)
    assert np.abs(c_a).mean() > 0.1 and np.abs(c_b).mean() > 0.1  # guard: terms not trivial


def test_shares_raw_and_centred():
    x = _inputs()
    x["b"][:] = x["b"][1]  # b constant: its term is a constant offset
    split = decompose(concat_model(), x).splits[0]
    raw, centred = split.shares()
    c = split.contributions
    bias = split.bias  # 0.3 as float32
    denom = np.abs(c).sum(axis=0) + bias
    assert_allclose(raw, np.vstack([np.abs(c), np.full(len(denom), bias)]) / denom, rtol=1e-12)
    # Centred, the constant term and the bias count for nothing: a gets everything.
    assert_allclose(centred[1], 0.0, atol=1e-9)
    assert_allclose(centred[0][centred[0] > 0], 1.0, rtol=1e-12)
    s = split.summary()
    assert_allclose(s["share_centred"], [1.0, 0.0], atol=1e-9)
    assert s["share_raw"][1] > 0.1  # guard: raw counts the constant term
    assert_allclose(sum(s["share_raw"]) + s["share_raw_bias"], 1.0, rtol=1e-12)


def test_linear_layers_dropout_and_a_repeated_part_are_folded_exactly():
    a, b = _ab()
    shared, za, zb = _shared(a, b)
    lin = layers.Dense(3, name="linear")
    head = layers.Dense(1, activation="sigmoid", name="head")
    merged = layers.Dropout(0.5)(layers.concatenate([layers.concatenate([za, zb]), za]))
    model = keras.Model([a, b], head(lin(merged)))
    rng = np.random.default_rng(2)
    w1, b1 = rng.normal(size=(6, 3)), rng.normal(size=3)
    w2, b2 = rng.normal(size=(3, 1)), rng.normal(size=1)
    shared.set_weights([W_SHARED, B_SHARED])
    lin.set_weights([w1.astype("float32"), b1.astype("float32")])
    head.set_weights([w2.astype("float32"), b2.astype("float32")])
    x = _inputs()
    split = decompose(model, x).splits[0]
    assert split.kind == "decomposed" and split.parts == ("shared@0", "shared@1")
    m = w1.astype("float32").astype(float) @ w2.astype("float32").astype(float)  # (6, 1)
    c_a = _by_hand(x["a"]) @ (m[0:2, 0] + m[4:6, 0])  # za appears twice
    assert_allclose(split.contributions[0], c_a, rtol=RTOL, atol=ATOL)
    assert_allclose(split.residual, 0.0, atol=ATOL)


def test_single_part_heads_mlp_heads_and_several_units():
    x = _inputs()
    sep = decompose(separate_model(), x).splits
    assert [s.kind for s in sep] == ["single_part", "single_part"]
    assert sep[0].part_inputs == (("a",),) and sep[1].part_inputs == (("b",),)
    assert sep[1].summary()["share_centred"] == [1.0]
    assert_allclose(sep[1].residual, 0.0, atol=ATOL)  # a linear head: pre-activation = output
    mlp = decompose(mlp_model(), x).splits[0]
    assert mlp.kind == "not_decomposable" and "hidden@0" in mlp.reason
    assert mlp.contributions.shape == (0, 40) and mlp.summary()["max_abs_residual"] is None
    a, b = _ab()
    _, za, zb = _shared(a, b)
    model = keras.Model([a, b], layers.Dense(2, activation="softmax", name="cls")(
        layers.concatenate([za, zb])))
    splits = decompose(model, x).splits
    assert [s.target for s in splits] == ["cls[0]", "cls[1]"]
    for s in splits:
        assert_allclose(s.residual, 0.0, atol=ATOL)
        assert np.all(np.abs(s.contributions).mean(axis=1) > 1e-3)  # guard


def test_additive_head_has_float_noise_contrast_and_the_mlp_does_not():
    x = _inputs(n=64)
    add = interaction(concat_model(), x, rng=np.random.default_rng(0))
    s = add.summary()
    assert add.contrast.shape == (1, 1, 64) and add.input_pairs == (("a", "b"),)
    assert s.relative[0, 0] < 1e-6 and s.verdict[0, 0] == "additive"
    mlp = interaction(mlp_model(), x, rng=np.random.default_rng(0))
    s = mlp.summary()
    assert s.relative[0, 0] > 0.05 and s.relative_ci_low[0, 0] > 0.01
    assert s.verdict[0, 0] == "interacts"


def test_product_head_contrast_is_known_in_logit_space():
    rng = np.random.default_rng(3)
    x = {k: rng.normal(size=(30, 1)).astype("float32") for k in ("a", "b")}
    model = product_model()
    res = interaction(model, x, rng=np.random.default_rng(5), pairs=75)
    rows, (pa, pb) = res.rows, res.partners[0]
    assert np.all(pa != rows) and np.all(pb != rows)  # derangements: a' is another sample
    a, b = x["a"][:, 0].astype(float), x["b"][:, 0].astype(float)
    expected = 2 * (a[rows] - a[pa]) * (b[rows] - b[pb])
    # Products of float32 values near 1, summed four times: 1e-5 absolute is ample.
    assert_allclose(res.contrast[0, 0], expected, rtol=1e-5, atol=1e-5)
    assert np.abs(expected).mean() > 0.5  # guard
    assert model.layers[-1].activation.__name__ == "sigmoid"  # restored


def test_heads_without_a_joint_path_get_exactly_zero():
    x = _inputs()
    res = interaction(separate_model(), x, rng=np.random.default_rng(0))
    assert res.targets == ("head_a", "head_b")
    assert np.all(res.contrast == 0.0)
    assert res.summary().verdict.tolist() == [["structural_zero"], ["structural_zero"]]
    assert res.logit.std(axis=1).min() > 0.1  # guard: the heads do vary


def test_same_seed_same_numbers_and_weights_unchanged():
    model, x = mlp_model(), _inputs()
    before = [w.copy() for w in model.get_weights()]
    first = interaction(model, x, rng=np.random.default_rng(7), seed=7)
    second = interaction(model, x, rng=np.random.default_rng(7), seed=7)
    assert first.to_json() == second.to_json()
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_bad_arguments_name_what_was_expected():
    x = _inputs()
    with pytest.raises(ValueError, match="Expected pairs to be a positive integer; received 0"):
        interaction(concat_model(), x, rng=np.random.default_rng(0), pairs=0)
    with pytest.raises(ValueError, match="Expected at least 2 samples"):
        interaction(concat_model(), {k: v[:1] for k, v in x.items()},
                    rng=np.random.default_rng(0))
    one = keras.Input((D,), name="only")
    single = keras.Model(one, layers.Dense(1)(one))
    with pytest.raises(ValueError, match="at least two inputs"):
        interaction(single, {"only": x["a"]}, rng=np.random.default_rng(0))


def _cli(args):
    result = CliRunner().invoke(main, ["paths"] + args)
    assert result.exit_code == 0, result.output
    return result


def test_cli_concat_run_json(tiny_runs):
    run = tiny_runs["concat"]
    out = json.loads(_cli(["--run", str(run.path), "--samples", "100", "--pairs", "150",
                           "--json"]).stdout)
    assert out["probe"] == "paths" and out["samples"] == 100
    heads = out["decomposition"]["heads"]
    assert [h["target"] for h in heads] == ["head_1", "head_2"]
    for h in heads:
        assert h["kind"] == "decomposed"
        assert h["parts"] == ["shared_lstm@0", "shared_lstm@1"]
        assert h["part_inputs"] == [["tweet_a"], ["tweet_b"]]
        # float32 LSTM states and kernels of order 1: the split is exact to ~1e-6.
        assert h["max_abs_residual"] < 1e-5 and h["logit_std"] > 0.1
        assert len(h["contributions"][0]) == 100
    inter = out["interaction"]
    assert inter["pairs"] == 150 and inter["verdict"] == [["additive"], ["additive"]]
    assert max(r[0] for r in inter["relative"]) < 1e-5
    # Saved as typed results with their fingerprints; loaded back they print the same JSON.
    folder = run.path / "probes"
    dec = resultio.load(folder / "paths-decomposition-n100-seed0.json")
    inter = resultio.load(folder / "paths-interaction-n100-seed0.json")
    assert json.loads(json.dumps(dec.to_json())) == out["decomposition"]
    assert json.loads(json.dumps(inter.to_json())) == out["interaction"]
    assert resultio.read_meta(folder / "paths-interaction-n100-seed0.json")["fingerprint"]


@pytest.mark.slow
def test_cli_separate_and_concat_mlp(tiny_runs, tiny_cache):
    from mtl_models import runs
    from tests.conftest import TINY

    sep = json.loads(_cli(["--run", str(tiny_runs["separate"].path), "--samples", "60",
                           "--json"]).stdout)
    assert [h["kind"] for h in sep["decomposition"]["heads"]] == ["single_part"] * 2
    assert sep["interaction"]["verdict"] == [["structural_zero"], ["structural_zero"]]
    path, _ = runs.train_run(runs.TrainConfig(variant="concat_mlp", **TINY), cache=tiny_cache)
    mlp = json.loads(_cli(["--run", str(path), "--samples", "100", "--json"]).stdout)
    assert [h["kind"] for h in mlp["decomposition"]["heads"]] == ["not_decomposable"] * 2
    assert mlp["interaction"]["verdict"] == [["interacts"], ["interacts"]]
    assert min(r[0] for r in mlp["interaction"]["relative"]) > 1e-3


def test_cli_table_and_one_line_errors(tiny_runs, tmp_path):
    table = _cli(["--run", str(tiny_runs["concat"].path), "--samples", "40", "--out",
                  str(tmp_path)]).stdout
    assert "shared_lstm@0" in table and "additive" in table and "bias" in table
    assert (tmp_path / "paths-decomposition-n40-seed0.json").is_file()
    assert (tmp_path / "paths-interaction-n40-seed0.json").is_file()
    model = concat_model()
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "one.npz", **{k: v[:1] for k, v in _inputs().items()})
    bad = CliRunner().invoke(main, ["paths", "--model", str(tmp_path / "m.keras"), "--data",
                                    str(tmp_path / "one.npz")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.stderr.strip().splitlines()[-1] == ("Error: Expected at least 2 samples to draw "
                                                    "partners from; received 1")


def test_a_head_on_concatenated_raw_inputs_splits_into_its_kernel_rows():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    model = keras.Model([a, b], layers.Dense(1, name="h")(layers.concatenate([a, b])))
    x = {"a": _inputs()["a"], "b": _inputs(dim=2)["b"]}
    split = decompose(model, x).splits[0]
    w = model.get_weights()[0][:, 0].astype(float)
    assert split.parts == ("a@0", "b@0") and split.part_inputs == (("a",), ("b",))
    assert_allclose(split.contributions, [x["a"] @ w[:3], x["b"] @ w[3:]], rtol=RTOL, atol=ATOL)
    assert_allclose(split.residual, 0.0, atol=ATOL)
