"""Several devices in one process (probes.engine.devices): two logical CPU devices give the numbers
of one, to float32 rounding, with the structural zeros exactly 0.0.

Logical CPU devices can only be made before TensorFlow starts, so the two-device runs are in
fresh subprocesses: one runs the probes through the library on one device and inside
`probes.on_devices(2)` and saves both; the other runs `probe ablate --devices 2` from the
command line, whose output is compared with `--devices 1` in this process.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from probes.cli import main

PROBES = [("ablate", {"mode": "shuffle"}), ("ablate", {"mode": "zero"}),
          ("attribute", {"method": "integrated_gradients", "steps": 4}),
          ("attribute", {"method": "input_x_gradient"}), ("attribute", {"method": "saliency"})]
# Every probe on separate; on concat (a shared LSTM, no structural zero) the first three:
# the two local methods run the same path function as integrated gradients does (~10 s more).
CASES = [("separate", k) for k in range(len(PROBES))] + [("concat", k) for k in range(3)]

CLI = "import sys; from probes.cli import main; main(sys.argv[1:])"

LIBRARY = r"""
import json, sys
import numpy as np
from probes.engine import devices
assert devices.split_cpu(2)  # before TensorFlow starts
import probes
from mtl_models.variants import build_model

out, probes_, cases = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])


def same(params):  # what must be equal: all but the median gap, a float of the attributions
    return {k: v for k, v in params.items() if k != "median_gap"}


arrays, meta = {}, {}
rng = np.random.default_rng(0)
for variant in ("separate", "concat"):
    model = build_model(variant, seq_len=6, features=5, units=3, seed=1)
    if variant == "concat":  # one-hot: the gathered-rows path (probes.engine.onehot_path)
        data = {t.name: np.eye(5, dtype="float32")[rng.integers(0, 5, (40, 6))]
                for t in model.inputs}
    else:
        data = {t.name: rng.standard_normal((40, 6, 5)).astype("float32")
                for t in model.inputs}
    todo = [(k, name, kw) for k, (name, kw) in enumerate(probes_) if [variant, k] in cases]
    for k, name, kw in todo:
        arrays[f"{variant}-{k}-one"] = getattr(probes, name)(model, data, seed=0, **kw)
    with probes.on_devices(2) as d:  # one block: the probes share the forward pass's graph
        for k, name, kw in todo:
            passes = d.passes
            arrays[f"{variant}-{k}-two"] = two = getattr(probes, name)(model, data, seed=0, **kw)
            one = arrays[f"{variant}-{k}-one"]
            meta[f"{variant}-{k}"] = {"passes": d.passes - passes,
                                      "replicas": d.strategy.num_replicas_in_sync,
                                      "same_params": same(one.params) == same(two.params),
                                      "gaps": [one.params.get("median_gap"),
                                               two.params.get("median_gap")],
                                      "one_hot": sorted(one.params.get("one_hot", {})),
                                      "verdicts": [one.matrix(), two.matrix()]}
    meta[variant] = sorted(d.seen)  # the devices the replicas' graphs were placed on
arrays = {f"{key}{suffix}": value for key, res in arrays.items()
          for suffix, value in (("", res.effects), ("-signed", res.signed)) if value is not None}
np.savez(out + ".npz", **arrays)
with open(out + ".json", "w") as f:
    json.dump(meta, f)
"""


def _start(code, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The library's runs on one and two devices, and `probe ablate --devices 2` (the two
    fresh processes run at the same time)."""
    from mtl_models.variants import build_model

    tmp = tmp_path_factory.mktemp("devices")
    model = build_model("separate", seq_len=6, features=5, units=3, seed=1)
    model.save(tmp / "m.keras")
    rng = np.random.default_rng(1)
    np.savez(tmp / "d.npz", **{t.name: rng.standard_normal((40, 6, 5)).astype("float32")
                               for t in model.inputs})
    library = _start(LIBRARY, str(tmp / "runs"), json.dumps(PROBES), json.dumps(CASES))
    cli = _start(CLI, *_ablate(tmp), "--devices", "2", "--out", str(tmp / "two"))
    _finish(library)
    with open(tmp / "runs.json") as f:
        meta = json.load(f)
    return {"arrays": dict(np.load(tmp / "runs.npz")), "meta": meta, "cli": _finish(cli),
            "tmp": tmp}


def _ablate(tmp):
    return ["ablate", "--model", str(tmp / "m.keras"), "--data", str(tmp / "d.npz"), "--json"]


@pytest.mark.slow
@pytest.mark.parametrize("variant, k", CASES)
def test_two_devices_give_the_numbers_of_one(runs, variant, k):
    arrays, meta = runs["arrays"], runs["meta"]
    info = meta[f"{variant}-{k}"]
    # Guard: the probe's passes really were split across two replicas, placed on two devices.
    assert info["replicas"] == 2 and info["passes"] >= 1
    assert meta[variant] == ["/job:localhost/replica:0/task:0/device:CPU:0",
                             "/job:localhost/replica:0/task:0/device:CPU:1"]
    assert info["same_params"] and info["verdicts"][0] == info["verdicts"][1]
    if info["gaps"][0] is not None:  # integrated gradients: the gap moves by rounding only
        np.testing.assert_allclose(info["gaps"][1], info["gaps"][0], rtol=1e-3, atol=1e-6)
    # concat's one-hot inputs run from gathered kernel rows, separate's normal ones densely.
    assert info["one_hot"] == (["tweet_a", "tweet_b"] if variant == "concat" else [])
    for suffix in ("", "-signed"):
        one = arrays.get(f"{variant}-{k}-one{suffix}")
        if one is None:
            continue
        two = arrays[f"{variant}-{k}-two{suffix}"]
        # The same rows in blocks of 20 instead of 40: a kernel may round a float32 output
        # (~1 at most) differently by an ulp, 6e-8, which moves an effect by as much (measured:
        # 1.2e-7 at most); 1e-6 is far above that and far below any effect that matters (the
        # guard below: > 1e-4). Zeros are compared exactly.
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(two == 0.0, one == 0.0)
    one, two = arrays[f"{variant}-{k}-one"], arrays[f"{variant}-{k}-two"]
    if variant == "separate":  # guard: the structural zeros are there and exactly 0.0
        assert (one == 0.0).sum() == one.size // 2 and (two[one == 0.0] == 0.0).all()
    else:  # concat: every head has a path from every input
        assert (one != 0.0).all()
    # Guard: the other effects are far above the tolerance, so the comparison is not trivial.
    assert (np.abs(one[one != 0.0]) > 1e-4).all()


@pytest.mark.slow
def test_cli_two_devices_print_the_json_of_one(runs):
    tmp = runs["tmp"]
    one = CliRunner().invoke(main, _ablate(tmp) + ["--devices", "1", "--out", str(tmp / "one")])
    assert one.exit_code == 0, one.output
    two_stdout, two_stderr = runs["cli"]
    # guard: the fresh process split its CPU into two logical devices before TF started
    assert "on 2 devices: /device:CPU:0, /device:CPU:1" in two_stderr
    assert "devices:" not in one.stderr
    assert json.loads(two_stdout) == json.loads(one.stdout)  # exactly, params included
    saved = [json.loads(next((tmp / d).glob("*.json")).read_text()) for d in ("one", "two")]
    assert saved[0]["fingerprint"] == saved[1]["fingerprint"]


@pytest.mark.slow
def test_more_devices_than_visible_is_one_line(runs):
    result = CliRunner().invoke(main, _ablate(runs["tmp"]) + ["--devices", "100000"])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"Error: Invalid value for '--devices': Expected devices <= \d+, the "
                        r"visible devices.*; received 100000", line), line
    bad = CliRunner().invoke(main, ["ablate", "--variant", "concat", "--devices", "two"])
    assert bad.exit_code == 2 and "Expected devices 'all' or a whole number >= 1; received " \
        "'two'" in bad.output


def test_on_devices_checks_its_argument():
    import probes

    for value in (0, -1, "two", 1.5, True):
        with pytest.raises(ValueError, match="Expected devices 'all' or a whole number >= 1"):
            with probes.on_devices(value):
                pass
    with pytest.raises(ValueError, match=r"Expected devices <= \d+, the visible devices"):
        with probes.on_devices(100000):
            pass
    for one in (None, 1):
        with probes.on_devices(one) as d:
            assert d is None
