import json

import numpy as np
import pytest
from click.testing import CliRunner

from probes.cli import main
from tests import models as m


def _json(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ablate_separate_run_json_contract(tiny_runs):
    out = _json(["ablate", "--run", str(tiny_runs["separate"].path), "--samples", "200",
                 "--json"])
    assert out["probe"] == "ablation" and out["method"] == "shuffle"
    assert out["model"] == "separate" and out["samples"] == 200 and out["seed"] == 0
    assert out["heads"] == ["head_1", "head_2"] and out["inputs"] == ["tweet_a", "tweet_b"]
    assert out["effect"][0][1] == 0.0 and out["effect"][1][0] == 0.0  # exact
    assert out["verdict"] == [["depends", "structural_zero"], ["structural_zero", "depends"]]
    assert out["depends"] == [[True, False], [False, True]]
    assert out["structural"] == [[True, False], [False, True]]
    assert out["effect"][0][0] > 0.01 and out["effect"][1][1] > 0.01  # guard
    # The result is saved in the run directory for reports.
    assert (tiny_runs["separate"].path / "probes" / "ablation-shuffle-n200-seed0.json").is_file()


def test_ablate_concat_run_all_cells_depend(tiny_runs):
    out = _json(["ablate", "--run", str(tiny_runs["concat"].path), "--samples", "200",
                 "--json"])
    assert out["verdict"] == [["depends", "depends"], ["depends", "depends"]]


def test_same_seed_gives_identical_json(tiny_runs):
    args = ["ablate", "--run", str(tiny_runs["concat"].path), "--samples", "50", "--mode",
            "noise", "--seed", "3", "--json"]
    first, second = CliRunner().invoke(main, args), CliRunner().invoke(main, args)
    assert first.exit_code == 0 and first.stdout == second.stdout


@pytest.fixture()
def user_files(tmp_path):
    model = m.three_by_three()
    model.save(tmp_path / "user.keras")
    inputs = m.random_inputs(model, 60)
    np.savez(tmp_path / "data.npz", **inputs, extra=np.zeros(3))
    return tmp_path / "user.keras", tmp_path / "data.npz"


def test_ablate_a_users_model_and_data(user_files, tmp_path):
    model_path, data_path = user_files
    result = CliRunner().invoke(main, ["ablate", "--model", str(model_path), "--data",
                                       str(data_path), "--samples", "60", "--json",
                                       "--out", str(tmp_path / "res")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["heads"] == ["h_ab", "h_b", "h_zero"] and out["inputs"] == ["x1", "x2", "x3"]
    assert out["verdict"] == m.KNOWN_3x3
    assert "ignored arrays in" in result.stderr and "extra" in result.stderr
    assert (tmp_path / "res" / "ablation-shuffle-n60-seed0.json").is_file()


def test_positional_npz_keys_are_accepted(user_files, tmp_path):
    model_path, _ = user_files
    # 60 samples: with fewer, h_zero's `depends` on x1 is refused (x3 has a path and could
    # move the head on samples none of them shows: probes.results.stats).
    inputs = m.random_inputs(m.three_by_three(), 60)
    np.savez(tmp_path / "pos.npz", inputs["x1"], inputs["x2"], inputs["x3"])
    out = _json(["ablate", "--model", str(model_path), "--data", str(tmp_path / "pos.npz"),
                 "--mode", "zero", "--json"])
    assert out["samples"] == 60 and out["verdict"] == m.KNOWN_3x3


def test_readable_table_without_json(user_files):
    model_path, data_path = user_files
    result = CliRunner().invoke(main, ["ablate", "--model", str(model_path), "--data",
                                       str(data_path), "--mode", "zero"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split()[:4] == ["head", "input", "path", "effect"]
    row = next(line for line in lines if line.startswith("h_zero  x3"))
    assert row.split()[2] == "yes" and row.split()[-1] == "zero"


def test_structure_of_a_users_model(user_files):
    model_path, _ = user_files
    out = _json(["structure", "--model", str(model_path), "--json"])
    assert out["structural"] == [[True, True, False], [False, True, False], [True, False, True]]
    assert out["shared_layers"] == {"flatten": 3}


def test_structure_table_of_separate():
    result = CliRunner().invoke(main, ["structure", "--variant", "separate"])
    assert result.exit_code == 0, result.output
    assert "head_1     path        -" in result.stdout
    assert "shared_lstm           2  head_1, head_2" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["ablate"], "Expected exactly one of --variant, --run, --model"),
    (["ablate", "--model", "x.keras"], "Expected --data FILE.npz with --model"),
    (["ablate", "--variant", "concat", "--mode", "drop"], "'drop' is not one of"),
    (["ablate", "--variant", "concat", "--samples", "0"], "0 is not in the range x>=1"),
])
def test_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_missing_model_file_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["ablate", "--model", str(tmp_path / "no.keras"),
                                       "--data", str(tmp_path / "no.npz")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().startswith("Error: Expected a .keras model file; received")
    assert "which does not exist" in result.output


def test_too_many_samples_names_the_limit(tiny_runs):
    # Up to 100000, pairs beyond the 1000 saved are generated (tests/test_robustness.py).
    result = CliRunner().invoke(main, ["ablate", "--run", str(tiny_runs["concat"].path),
                                       "--samples", "100001"])
    assert result.exit_code == 1
    assert "Expected --samples <= 100000" in result.output


def test_attribute_separate_run_agrees_with_ablation(tiny_runs):
    out = _json(["attribute", "--run", str(tiny_runs["separate"].path), "--samples", "40",
                 "--json"])
    assert out["probe"] == "attribution" and out["method"] == "integrated_gradients"
    assert out["effect"][0][1] == 0.0 and out["effect"][1][0] == 0.0
    assert out["verdict"] == [["depends", "structural_zero"], ["structural_zero", "depends"]]
    assert out["disagreements"] == []
    c = out["completeness"]
    assert c["median_gap"] < 0.01 and c["steps"] >= 8 and c["quadrature"] == "gauss_legendre"
    assert np.shape(c["gap"]) == (2, 40)


def test_attribute_reports_disagreement_with_ablation(tmp_path):
    # head = sigmoid(w . x1 + hard_sigmoid(mean(x2))) with mean(x2) = +-10 on every sample:
    # the hard sigmoid is saturated (gradient exactly 0) yet shuffling x2 flips it 0 <-> 1.
    # Zero attributions while the output moves are `unreliable`, never `zero`.
    import keras

    x1, x2 = keras.Input((m.T, m.F), name="x1"), keras.Input((m.T, m.F), name="x2")
    gate = keras.layers.Dense(1, activation="hard_sigmoid", name="gate")
    gated = gate(keras.layers.Flatten()(x2))
    head_layer = keras.layers.Dense(1, activation="sigmoid", name="head")
    head = head_layer(keras.layers.concatenate([keras.layers.Flatten()(x1), gated]))
    model = keras.Model([x1, x2], head)
    gate.set_weights([np.full((m.T * m.F, 1), 1 / (m.T * m.F), "float32"),
                      np.zeros(1, "float32")])
    # Every weight by hand (no dependence on Keras' global seed): x1 moves the logit by
    # ~0.35, the gate by 2.0, so each input holds well over 5% of the head's effect.
    kernel = np.full((m.T * m.F + 1, 1), 0.1, "float32")
    kernel[-1] = 2.0
    head_layer.set_weights([kernel, np.zeros(1, "float32")])
    model.save(tmp_path / "gate.keras")
    rng = np.random.default_rng(0)
    sign = np.where(rng.random(60) < 0.5, 10.0, -10.0).astype("float32")
    np.savez(tmp_path / "gate.npz", x1=rng.normal(size=(60, m.T, m.F)).astype("float32"),
             x2=np.broadcast_to(sign[:, None, None], (60, m.T, m.F)).copy())
    args = ["attribute", "--model", str(tmp_path / "gate.keras"), "--data",
            str(tmp_path / "gate.npz"), "--method", "saliency"]
    out = _json(args + ["--json"])
    assert out["verdict"] == [["depends", "unreliable"]]
    assert out["effect"][0][1] == 0.0  # the gradient really is exactly 0
    assert out["disagreements"] == [{"head": "head", "input": "x2",
                                     "attribution": "unreliable", "ablation": "depends"}]
    (cell,) = out["params"]["unreliable"]
    assert cell["head"] == "head" and cell["input"] == "x2" and "saturated" in cell["reason"]
    text = CliRunner().invoke(main, args).stdout
    assert ("DISAGREE head <- x2: attribution says unreliable, ablation (shuffle) says "
            "depends" in text)
    assert "unreliable head <- x2: every attribution is exactly 0" in text


def test_attribute_bad_method_lists_the_choices():
    result = CliRunner().invoke(main, ["attribute", "--variant", "concat", "--method", "lrp"])
    assert result.exit_code == 2
    assert "'lrp' is not one of 'saliency', 'input_x_gradient', 'integrated_gradients', " \
           "'smoothgrad'" in result.output
