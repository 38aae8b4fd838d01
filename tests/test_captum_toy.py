"""Captum's README example, rebuilt in Keras: integrated gradients must give Captum's numbers.

Captum (github.com/pytorch/captum, README "Getting started"):

    torch.manual_seed(123); np.random.seed(123)
    model = ToyModel()  # lin1 (3->3), ReLU, lin2 (3->2)
    model.lin1.weight = arange(-4.0, 5.0).view(3, 3), bias zeros
    model.lin2.weight = arange(-3.0, 3.0).view(2, 3), bias ones
    input = torch.rand(2, 3); baseline = torch.zeros(2, 3)
    ig.attribute(input, baseline, target=0)
    # IG Attributions: tensor([[-0.5922, -1.5497, -1.0067],
    #                          [ 0.0000, -0.2219, -5.1991]])

Keras Dense kernels are the transposes of torch's Linear weights.
"""

import json

import keras
import numpy as np
from click.testing import CliRunner
from numpy.testing import assert_allclose

from probes.cli import main
from probes.methods.attribution import attribute

# torch.rand(2, 3) after torch.manual_seed(123), exactly: torch's CPU generator is the standard
# MT19937 (seeded by init_genrand(123)) and a float32 draw is (u32 & 0xFFFFFF) / 2**24.
# Captum prints them as [[0.2961, 0.5166, 0.2517], [0.6886, 0.0740, 0.8665]].
X = (np.array([[4967934, 8666477, 4222334], [11552066, 1241052, 14537826]])
     / 2 ** 24).astype(np.float32)
CAPTUM_IG = np.array([[-0.5922, -1.5497, -1.0067], [0.0000, -0.2219, -5.1991]])

# With zero biases in lin1 the model is linear along the path from the zero baseline, so IG is
# x * (gradient at x), exactly: lin2 row 0 through the ReLUs active at x (sample 1: unit 3
# only; sample 2: units 2 and 3) gives the rows below.
EXACT_IG = np.array([[-2 * X[0, 0], -3 * X[0, 1], -4 * X[0, 2]],
                     [0.0, -3 * X[1, 1], -6 * X[1, 2]]], dtype=np.float64)


def toy_model():
    x = keras.Input((3,), name="x")
    lin1 = keras.layers.Dense(3, name="lin1")
    lin2 = keras.layers.Dense(2, name="lin2")
    out = lin2(keras.layers.ReLU(name="relu")(lin1(x)))
    model = keras.Model(x, out)
    lin1.set_weights([np.arange(-4.0, 5.0).reshape(3, 3).T.astype("float32"),
                      np.zeros(3, "float32")])
    lin2.set_weights([np.arange(-3.0, 3.0).reshape(2, 3).T.astype("float32"),
                      np.ones(2, "float32")])
    return model


def test_exact_values_match_captums_printout():
    # Captum prints 4 decimals: each entry within 5e-5 of the exact value.
    assert_allclose(EXACT_IG, CAPTUM_IG, atol=5e-5, rtol=0)


def test_integrated_gradients_match_captum():
    result = attribute(toy_model(), {"x": X}, rng=np.random.default_rng(0),
                       method="integrated_gradients", baseline="zero", target=0,
                       space="probability")
    assert result.heads == ("lin2",) and result.inputs == ("x",)
    # Per-sample sums of |IG|: 3.1486 and 5.4210 from Captum's rows (4 decimals printed, so
    # each sum is within 1e-4); the exact values to float32 rounding of a few products.
    assert_allclose(result.effects[0, 0], np.abs(CAPTUM_IG).sum(axis=1), atol=1e-4, rtol=0)
    assert_allclose(result.effects[0, 0], np.abs(EXACT_IG).sum(axis=1), rtol=1e-5)
    assert_allclose(result.signed[0, 0], CAPTUM_IG.sum(axis=1), atol=1e-4, rtol=0)
    assert_allclose(result.signed[0, 0], EXACT_IG.sum(axis=1), rtol=1e-5)
    # Completeness: f(x) - f(0) is the sum of the attributions (Captum's delta is 2e-7, 5e-7).
    assert_allclose(result.completeness_gap[0], 0.0, atol=1e-5)


def test_integrated_gradients_cli_with_two_samples(tmp_path):
    toy_model().save(tmp_path / "toy.keras")
    np.savez(tmp_path / "toy.npz", x=X)
    result = CliRunner().invoke(main, [
        "attribute", "--model", str(tmp_path / "toy.keras"), "--data",
        str(tmp_path / "toy.npz"), "--method", "integrated_gradients", "--baseline", "zero",
        "--target", "0", "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["heads"] == ["lin2"] and out["inputs"] == ["x"] and out["samples"] == 2
    # Two samples are too few for the statistics: the verdict says so rather than guessing.
    assert out["verdict"] == [["too_few_samples"]]
    # The mean effect is still the mean of the two per-sample sums (float32, see above).
    assert_allclose(out["effect"][0][0], np.abs(EXACT_IG).sum(axis=1).mean(), rtol=1e-5)


def test_maps_equal_captums_attributions(tmp_path):
    result = attribute(toy_model(), {"x": X}, rng=np.random.default_rng(0),
                       method="integrated_gradients", baseline="zero", target=0,
                       space="probability", maps=True)
    (signed,) = result.maps  # one input, kept whole: (heads, samples, 3)
    assert signed.shape == (1, 2, 3)
    # Captum's printout to its 4 decimals (issue 18's acceptance: 1e-4), and the exact values.
    assert_allclose(signed[0], CAPTUM_IG, atol=1e-4, rtol=0)
    assert_allclose(signed[0], EXACT_IG, rtol=1e-5, atol=1e-7)
    # The maps are the elements the per-sample sums add up (those are summed in float32).
    assert_allclose(signed[0].sum(axis=1), result.signed[0, 0], rtol=1e-6)
    assert_allclose(np.abs(signed[0]).sum(axis=1), result.effects[0, 0], rtol=1e-6)
    # They travel with the saved result, bit for bit.
    from probes import load

    again = load(result.save(tmp_path))
    np.testing.assert_array_equal(again.maps[0], signed)
    # Without maps=True nothing is kept.
    plain = attribute(toy_model(), {"x": X}, rng=np.random.default_rng(0),
                      method="integrated_gradients", baseline="zero", target=0,
                      space="probability")
    assert plain.maps is None
