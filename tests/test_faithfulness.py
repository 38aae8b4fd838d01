"""Deletion and insertion curves on a hand-weighted model with a known answer."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from probes import load
from probes.checks.faithfulness import faithfulness
from probes.cli import main

T, F, K = 12, 3, 3  # steps, features, the last K steps are all the head reads


def last_k_model():
    """head = sigmoid(sum of w . x over the last K steps); a second input it cannot see."""
    x = keras.Input((T, F), name="x")
    other = keras.Input((T, F), name="other")
    tail = keras.layers.Cropping1D((T - K, 0), name="tail")(x)  # (batch, K, F)
    flat = keras.layers.Flatten(name="flat")(tail)
    head = keras.layers.Dense(1, activation="sigmoid", name="head")
    out = head(flat)
    model = keras.Model([x, other], out)
    w = np.linspace(0.5, 1.5, K * F, dtype="float32")[:, None]
    head.set_weights([w, np.zeros(1, "float32")])
    return model, w.reshape(K, F)


@pytest.fixture(scope="module")
def setup():
    model, w = last_k_model()
    rng = np.random.default_rng(0)
    data = {"x": rng.uniform(0.5, 1.5, (40, T, F)).astype("float32"),
            "other": rng.uniform(0.5, 1.5, (40, T, F)).astype("float32")}
    res = faithfulness(model, data, rng=np.random.default_rng(1),
                       methods=("integrated_gradients", "saliency", "random"))
    return model, w, data, res


def test_integrated_gradients_deletion_is_the_exact_curve(setup):
    _, w, data, res = setup
    ig = res.methods.index("integrated_gradients")
    # The logit is linear with bias 0: removing steps removes their terms w . x_t exactly, so
    # IG (exact for a linear logit) ranks the K read steps by their terms, and after removing
    # round(f * 12) steps the normalised score is what the remaining terms add up to.
    terms = (data["x"][:, T - K:] * w).sum(axis=2)  # (N, K)
    ranked = -np.sort(-terms, axis=1)
    total = terms.sum(axis=1)
    removed = np.round(res.fractions * T).astype(int)
    expected = np.stack([1 - ranked[:, :min(k, K)].sum(axis=1) / total for k in removed], 1)
    # float32 logits of 9 products: 1e-5 relative.
    np.testing.assert_allclose(res.normalised("deletion")[ig, 0, 0], expected, rtol=1e-5,
                               atol=1e-6)
    assert res.params["methods"] == ["integrated_gradients", "saliency", "random"]


def test_ranked_curves_beat_the_random_floor(setup):
    _, _, _, res = setup
    dele, ins = res.areas("deletion")[:, 0, 0], res.areas("insertion")[:, 0, 0]
    ig, rnd = res.methods.index("integrated_gradients"), res.methods.index("random")
    # IG removes the 3 read steps by f = 0.3: area about 0.15; a random order removes them
    # over the whole curve: about 0.5 (and restores them as slowly).
    assert dele[ig].mean() < 0.2 < 0.35 < dele[rnd].mean()
    assert ins[ig].mean() > 0.8 > 0.65 > ins[rnd].mean()
    assert (dele[ig] < dele[rnd]).mean() > 0.9 and (ins[ig] > ins[rnd]).mean() > 0.9


def test_an_input_the_head_cannot_see_is_not_measurable(setup):
    _, _, _, res = setup
    assert res.measurable().tolist() == [[True, False]]
    assert np.isnan(res.areas("deletion")[:, 0, 1]).all()  # never a number without a path
    header, rows = res.table_rows()
    assert rows[1][2] == "- (no path)"


def test_cli_saves_and_reports_the_areas(setup, tmp_path):
    model, _, data, _ = setup
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **data)
    out = CliRunner().invoke(main, [
        "faithfulness", "--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "d.npz"),
        "--methods", "integrated_gradients,random", "--out", str(tmp_path / "r"), "--json"])
    assert out.exit_code == 0, out.output
    blob = json.loads(out.stdout)
    assert blob["methods"] == ["integrated_gradients", "random"]
    assert blob["deletion_area"][0][0][0] < blob["deletion_area"][1][0][0]
    assert blob["deletion_area"][0][0][1] is None  # no path: no number
    saved = load(tmp_path / "r" / "faithfulness-n40-seed0.json")
    assert saved.deletion.shape == (2, 1, 2, 40, 11)
    bad = CliRunner().invoke(main, ["faithfulness", "--model", str(tmp_path / "m.keras"),
                                    "--data", str(tmp_path / "d.npz"), "--methods", "lime"])
    assert bad.exit_code == 2 and "expected a comma-separated list" in bad.output


def test_cells_without_a_path_are_what_the_passes_would_give(monkeypatch):
    # The curves of a cell without a path are not run: the partial pass gives such a head its
    # output at the samples on every row. Run them anyway (every cell taken as reachable): the
    # arrays must be the same, bit for bit.
    from mtl_models.variants import build_model
    from probes.checks import faithfulness as module
    from tests import models as m

    model = build_model("separate", seq_len=6, features=5, units=3, seed=1)
    data = m.random_inputs(model, 20)

    def run():
        return faithfulness(model, data, rng=np.random.default_rng(0),
                            methods=("saliency", "random"))

    skipped = run()
    assert skipped.structural.tolist() == [[True, False], [False, True]]  # two cells skipped
    real = module.structure

    class Everything:
        def __init__(self, model):
            self.reach = np.ones_like(real(model).reach)

    monkeypatch.setattr(module, "structure", Everything)
    computed = run()
    np.testing.assert_array_equal(skipped.deletion, computed.deletion)
    np.testing.assert_array_equal(skipped.insertion, computed.insertion)
    # Guard: the cells with a path moved (the comparison covers real curves too).
    assert np.ptp(skipped.deletion[0, 0, 0]) > 1e-3


def test_the_methods_settings_are_named_in_the_result_and_checked(setup):
    model, _, data, res = setup
    assert res.params["settings"]["integrated_gradients"] == {"steps": 8}  # the default
    four = faithfulness(model, data, rng=np.random.default_rng(1),
                        methods=("integrated_gradients", "random"),
                        settings={"integrated_gradients": {"steps": 4}})
    assert four.params["settings"] == {"integrated_gradients": {"steps": 4},
                                       "smoothgrad": {"noise_samples": 8}}
    # The curve of a linear logit does not depend on the nodes: the same ranking either way.
    ig = res.methods.index("integrated_gradients")
    np.testing.assert_allclose(four.deletion[0], res.deletion[ig], rtol=1e-6)
    for bad, fragment in (({"occlusion": {"steps": 4}}, "Expected settings of"),
                          ({"integrated_gradients": {"nodes": 4}}, "Expected a setting of"),
                          ({"smoothgrad": {"noise_samples": 0}}, "positive integer")):
        with pytest.raises(ValueError, match=fragment):
            faithfulness(model, data, rng=np.random.default_rng(1), methods=("random",),
                         settings=bad)
