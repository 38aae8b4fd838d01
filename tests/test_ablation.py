import numpy as np
import pytest

from mtl_models.variants import build_model
from probes.methods.ablation import MODES
from probes.methods.attribution import METHODS
from probes.results.stats import summarize
from probes.run.registry import PROBES
from tests import models as m

N = 40


def _run(name, model, inputs, seed=0, **kw):
    return PROBES[name](model, inputs, rng=np.random.default_rng(seed), seed=seed, **kw)


@pytest.fixture(scope="module")
def separate():
    model = build_model("separate", seq_len=6, features=5, units=3, seed=1)
    return model, m.random_inputs(model, N)


# Every registered probe of per-sample effects (heads x inputs x samples), plus integrated
# gradients with the random (shuffle) baseline.
PER_SAMPLE = sorted(name for name in PROBES if name.split("/")[0] in ("ablation", "attribution"))
CONTRACT = [(name, {}) for name in PER_SAMPLE] + [
    ("attribution/integrated_gradients", {"baseline": "shuffle"})]


def _case_id(case):
    name, kw = case
    return name + "".join(f"[{k}={v}]" for k, v in kw.items())


# The cases whose numbers come from the generator: permutations, noise, a shuffled baseline.
STOCHASTIC = {"ablation/shuffle", "ablation/noise", "attribution/smoothgrad",
              "attribution/integrated_gradients[baseline=shuffle]"}
assert STOCHASTIC <= {_case_id(c) for c in CONTRACT}


def test_the_contract_covers_every_mode_and_method():
    assert PER_SAMPLE == sorted([f"ablation/{mode}" for mode in MODES]
                                + [f"attribution/{method}" for method in METHODS])


@pytest.mark.parametrize("case", CONTRACT, ids=_case_id)
def test_contract_names_shapes_determinism_subset_and_weights(case, separate):
    name, kw = case
    model, inputs = separate
    before = [w.copy() for w in model.get_weights()]
    r1 = _run(name, model, inputs, **kw)
    assert r1.heads == ("head_1", "head_2") and r1.inputs == ("tweet_a", "tweet_b")
    assert r1.effects.shape == (2, 2, N) and r1.params["seed"] == 0
    # Same seed, same numbers (bit for bit).
    np.testing.assert_array_equal(_run(name, model, inputs, **kw).effects, r1.effects)
    # A subset, with the full set as background and its sample ids, gives the same rows, bit
    # for bit: its samples sit in passes of the full run's width at the full run's positions
    # (probes.engine.forward.layout; a pass of 4 rows would round differently from one of 40).
    rows = np.array([3, 17, 18, 39])
    sub = {k: v[rows] for k, v in inputs.items()}
    r_sub = _run(name, model, sub, background=inputs, sample_ids=rows, **kw)
    np.testing.assert_array_equal(r_sub.effects, r1.effects[:, :, rows])
    assert np.count_nonzero(r_sub.effects) >= 8  # guard: the path cells are not all zero
    # A different seed: the random probes draw other permutations / noise / baselines, so
    # every sample of every path cell moves; the deterministic ones repeat bit for bit.
    r2 = _run(name, model, inputs, seed=1, **kw)
    assert r2.params["seed"] == 1
    path = r1.structural  # (H, I): head_1 <- tweet_a and head_2 <- tweet_b
    np.testing.assert_array_equal(path, [[True, False], [False, True]])
    np.testing.assert_array_equal(r2.effects[~path], 0.0)  # no path: exactly zero either way
    if _case_id(case) in STOCHASTIC:
        assert np.all(r2.effects[path] != r1.effects[path]), (r1.effects[path],
                                                               r2.effects[path])
    else:
        np.testing.assert_array_equal(r2.effects, r1.effects)
    # The model is left exactly as it was.
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["ablation/zero", "attribution/saliency"])
@pytest.mark.parametrize("ids", [[0, 1, 2], [0, 1, 2, N], [-1, 0, 1, 2], [0.0, 1.0, 2.0, 3.0]])
def test_bad_sample_ids_are_refused_by_every_family(name, ids, separate):
    model, inputs = separate
    sub = {k: v[:4] for k, v in inputs.items()}
    with pytest.raises(ValueError, match=rf"Expected sample_ids: 4 integers in \[0, {N}\)"):
        _run(name, model, sub, background=inputs, sample_ids=np.array(ids))


@pytest.mark.parametrize("mode", MODES)
def test_separate_cross_cells_are_exactly_zero(mode, separate):
    model, inputs = separate
    r = _run(f"ablation/{mode}", model, inputs)
    np.testing.assert_array_equal(r.effects[0, 1], 0.0)  # head_1 <- tweet_b
    np.testing.assert_array_equal(r.effects[1, 0], 0.0)  # head_2 <- tweet_a
    # Guard: the cells with a path move on every sample.
    assert np.all(r.effects[0, 0] > 0) and np.all(r.effects[1, 1] > 0)
    np.testing.assert_array_equal(r.structural, [[True, False], [False, True]])


def test_occlusion_profile_sums_to_the_total_and_covers_time(separate):
    model, inputs = separate
    r = _run("ablation/occlusion", model, inputs, window=4)
    assert r.profile.shape == (2, 2, N, 2)  # 6 steps in windows of 4: starts 0 and 4
    np.testing.assert_array_equal(r.profile_starts, [0, 4])
    # Float64 sum of the same two numbers in the same order: exact.
    np.testing.assert_array_equal(r.profile.sum(axis=3), r.effects)


def test_zero_ablation_of_a_linear_head_is_the_weighted_input():
    # head = w . flatten(x1) + 0: zeroing x1 moves it by exactly |w . x1| (float32 dot).
    import keras

    x1 = keras.Input((m.T, m.F), name="x1")
    dense = keras.layers.Dense(1, name="lin")
    model = keras.Model(x1, dense(keras.layers.Flatten()(x1)))
    w = np.arange(1, m.T * m.F + 1, dtype="float32")[:, None] / 10
    dense.set_weights([w, np.zeros(1, "float32")])
    x = m.random_inputs(model, N)["x1"]
    r = _run("ablation/zero", model, {"x1": x})
    expected = np.abs(x.reshape(N, -1) @ w)[:, 0]
    # float32 dot products of 12 terms, O(1) values: relative error ~1e-6.
    np.testing.assert_allclose(r.effects[0, 0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("named", [True, False])
def test_three_inputs_three_heads_recover_the_known_matrix(named, tmp_path):
    import keras

    keras.backend.clear_session()  # Keras' default names count from here, whatever ran before
    model = m.three_by_three(named=named)
    path = tmp_path / "m.keras"
    model.save(path)
    model = keras.saving.load_model(path, compile=False)
    r = _run("ablation/shuffle", model, m.random_inputs(model, 60))
    if not named:
        assert r.inputs == ("input_layer", "input_layer_1", "input_layer_2")
        assert r.heads[0].startswith("dense")
    s = summarize(r)
    np.testing.assert_array_equal(s.verdict, m.KNOWN_3x3)
    np.testing.assert_array_equal(r.structural, [[True, True, False], [False, True, False],
                                                 [True, False, True]])


def test_an_input_that_reaches_no_head_is_structural_zero():
    model = m.unused_input()
    r = _run("ablation/zero", model, m.random_inputs(model, 30))
    np.testing.assert_array_equal(summarize(r).verdict, [["depends", "structural_zero"]])


def test_integer_tokens_through_a_shared_embedding():
    model = m.token_model()
    inputs = m.random_inputs(model, 50)
    r = _run("ablation/shuffle", model, inputs)
    np.testing.assert_array_equal(summarize(r).verdict, [["depends", "structural_zero"],
                                                         ["structural_zero", "depends"]])
    np.testing.assert_array_equal(r.effects[0, 1], 0.0)
    with pytest.raises(ValueError, match="Expected a float input for mean ablation; received "
                                         "int32 input 'tokens_a'"):
        _run("ablation/mean", model, inputs)


def test_loss_effects_with_labels(separate):
    model, inputs = separate
    labels = {"head_1": np.ones(N), "head_2": np.zeros(N)}
    r = _run("ablation/zero", model, inputs, labels=labels)
    assert r.loss_effects.shape == (2, 2, N)
    np.testing.assert_array_equal(r.loss_effects[0, 1], 0.0)
    # For head_1 with label 1, the loss change is log p(base) - log p(ablated), per sample.
    from probes.engine.forward import compiled_forward, run_chunk

    f = compiled_forward(model)
    base = run_chunk(f, [inputs["tweet_a"], inputs["tweet_b"]], N)[0][:, 0]
    abl = run_chunk(f, [np.zeros_like(inputs["tweet_a"]), inputs["tweet_b"]], N)[0][:, 0]
    # float64 logs of float32 probabilities: agreement to 1e-12.
    np.testing.assert_allclose(r.loss_effects[0, 0], np.log(base) - np.log(abl), rtol=1e-9,
                               atol=1e-12)


def test_bad_arguments_name_the_problem(separate):
    model, inputs = separate
    with pytest.raises(ValueError, match="Expected a mode in"):
        PROBES["ablation/zero"].func(model, inputs, rng=np.random.default_rng(0), mode="drop")
    with pytest.raises(ValueError, match=r"Expected inputs 'tweet_b' of shape \(N, 6, 5\); "
                                         r"received \(40, 6, 4\)"):
        _run("ablation/zero", model, {**inputs, "tweet_b": inputs["tweet_b"][..., :4]})
    with pytest.raises(ValueError, match="received none for \\['tweet_b'\\]"):
        _run("ablation/zero", model, {"tweet_a": inputs["tweet_a"]})
    bad = inputs["tweet_a"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Expected finite values in inputs 'tweet_a'"):
        _run("ablation/zero", model, {**inputs, "tweet_a": bad})
