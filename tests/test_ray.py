"""`--ray`: a probe's shards as Ray tasks on a local Ray of 2 CPUs, merged, equal the plain run
exactly; and the one-line errors without ray or without a reachable cluster.

The Ray tests need the optional extra (pip install 'mtl-probe[ray]') and are skipped without
it; the error tests run either way.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras import layers

from probes.model.onehot import OneHot
from mtl_models.variants import build_model
from probes.cli import main
from probes.results.seeds import generator
from probes.run import fanout
from probes.run.registry import PROBES
from tests.models import SCALE_MODULE, same_result

N = 40  # samples: at least the statistics' 20, and 4 shards of 10


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module (starting one takes seconds); run_on_ray and
    the CLI reuse it."""
    ray = pytest.importorskip("ray", reason="the optional extra ray is not installed")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def separate():
    """A tiny `separate` model (head_1 sees only tweet_a, head_2 only tweet_b), one-hot pairs
    with empty steps, and labels."""
    model = build_model("separate", seq_len=6, features=5, units=3, seed=1)
    rng = np.random.default_rng(0)
    codes = {k: rng.integers(-1, 5, size=(N, 6)) for k in ("tweet_a", "tweet_b")}
    labels = {"head_1": rng.integers(0, 2, N), "head_2": rng.integers(0, 2, N)}
    return model, codes, labels


CASES = [("ablation/shuffle", {"permutations": 3, "batch_size": 16}, False),
         ("attribution/integrated_gradients",
          {"steps": 8, "baseline": "shuffle", "maps": True, "batch_size": 64}, True)]


@pytest.mark.slow
@pytest.mark.parametrize("probe,params,lazy", CASES, ids=[c[0] for c in CASES])
def test_shards_on_ray_equal_the_plain_run_exactly(local_ray, separate, probe, params, lazy):
    model, codes, labels = separate
    inputs = {k: OneHot(c, 5) if lazy else np.asarray(OneHot(c, 5)) for k, c in codes.items()}
    lab = labels if probe.startswith("ablation") else None  # loss effects too
    plain = PROBES[probe](model, inputs, rng=generator(7, "probe"), labels=lab, seed=7,
                          model_name="tiny", **params)
    lines = []
    got = fanout.run_on_ray(probe, model, inputs, shards=4, labels=lab, seed=7,
                            model_name="tiny", params=params, report=lines.append)
    same_result(plain, got)  # bit for bit, params included
    assert got.model == "tiny"
    assert lines[0].startswith(f"ray: {probe} on {N} samples as 4 tasks")
    assert sorted(line.split()[2] for line in lines[1:]) == ["1/4", "2/4", "3/4", "4/4"]
    assert all(line.startswith("ray: shard ") and line.endswith(" s)") for line in lines[1:])
    # Guards: the path cells moved on most samples, the cross cells are exactly 0.0.
    assert np.count_nonzero(plain.effects[[0, 1], [0, 1]]) >= 2 * N - 4
    np.testing.assert_array_equal(plain.effects[[0, 1], [1, 0]], 0.0)
    if lab is not None:
        assert np.any(plain.loss_effects)


def _custom_files(directory):
    """A model behind a custom layer (loaded only with --custom-module) and its .npz data."""
    module = directory / "scale_layer.py"
    module.write_text(SCALE_MODULE)
    namespace = {}
    exec(compile(SCALE_MODULE, str(module), "exec"), namespace)  # noqa: S102 (our own text)
    a, b = keras.Input((4, 3), name="a"), keras.Input((4, 3), name="b")
    fa = namespace["Scale"](name="scale")(layers.Flatten()(a))
    h_a = layers.Dense(1, activation="sigmoid", name="h_a")(fa)
    h_ab = layers.Dense(1, activation="sigmoid", name="h_ab")(
        layers.concatenate([fa, layers.Flatten()(b)]))
    keras.Model([a, b], [h_a, h_ab]).save(directory / "model.keras")
    rng = np.random.default_rng(1)
    np.savez(directory / "data.npz", a=rng.normal(size=(N, 4, 3)).astype("float32"),
             b=rng.normal(size=(N, 4, 3)).astype("float32"))
    return directory / "model.keras", directory / "data.npz", module


@pytest.mark.slow
def test_cli_ray_prints_and_saves_what_the_plain_command_does(local_ray, tmp_path):
    model, data, module = _custom_files(tmp_path)
    common = ["ablate", "--model", str(model), "--data", str(data), "--custom-module",
              str(module), "--json", "--out"]
    plain = CliRunner().invoke(main, [*common, str(tmp_path / "plain")])
    fanned = CliRunner().invoke(main, [*common, str(tmp_path / "ray"), "--ray", "--shards", "3"])
    assert plain.exit_code == 0, plain.output
    assert fanned.exit_code == 0, fanned.output
    assert fanned.stdout == plain.stdout  # the JSON contract, character for character
    assert "ray: shard 3/3 done" in fanned.stderr
    out = json.loads(fanned.stdout)
    assert out["heads"] == ["h_a", "h_ab"] and out["inputs"] == ["a", "b"]
    assert out["effect"][0][1] == 0.0 and min(out["effect"][0][0], *out["effect"][1]) > 0.01
    # Saved with the plain run's fingerprint, so a report reuses it.
    stem = "ablation-shuffle-n40-seed0"
    saved = [json.loads((tmp_path / d / f"{stem}.json").read_text()) for d in ("plain", "ray")]
    assert saved[1]["fingerprint"] == saved[0]["fingerprint"]
    with np.load(tmp_path / "plain" / f"{stem}.npz") as a, \
            np.load(tmp_path / "ray" / f"{stem}.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)


@pytest.mark.parametrize("extra,message", [
    (["--shards", "3"], "Expected --shards only with --ray; received it without"),
    (["--ray", "--shard", "1/2"], "Expected --ray or --shard, not both (--ray runs every "
                                  "shard); received both")])
def test_ray_options_refused_with_one_line(tmp_path, extra, message):
    result = CliRunner().invoke(main, ["ablate", "--model", str(tmp_path / "m.keras"), "--data",
                                       str(tmp_path / "d.npz"), *extra])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == f"Error: {message}"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_without_ray_the_command_says_how_to_install_it(tmp_path):
    # ray made unimportable in a fresh process (as on an install without the extra)
    done = _python(f"""
        import sys
        sys.modules["ray"] = None
        from probes.cli import main
        main(["ablate", "--model", {str(tmp_path / 'm.keras')!r}, "--data",
              {str(tmp_path / 'd.npz')!r}, "--ray"])
        """)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: Expected the optional package ray for --ray (pip install 'mtl-probe[ray]'); "
        "received ImportError: import of ray halted; None in sys.modules")


def test_an_unreachable_cluster_is_one_line_not_minutes_of_retries():
    pytest.importorskip("ray", reason="the optional extra ray is not installed")
    done = _python("""
        from probes.run.fanout import connect
        try:
            with connect("127.0.0.1:1"):
                pass
        except ValueError as err:
            print(err)
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Expected a reachable Ray cluster at 127.0.0.1:1 (`ray start --head` there, port "
        "open); received ConnectionRefusedError: Connection refused")


@pytest.mark.slow
def test_a_local_ray_started_for_the_call_is_stopped_after_it():
    pytest.importorskip("ray", reason="the optional extra ray is not installed")
    done = _python("""
        import ray
        from probes.run.fanout import connect
        with connect("local") as started:
            print(started.is_initialized(), int(started.cluster_resources()["CPU"]) >= 1)
        print(ray.is_initialized())
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]


@pytest.mark.slow
def test_cli_ray_runs_the_attribution_checks_as_the_plain_commands(local_ray, tmp_path):
    model, data, module = _custom_files(tmp_path)
    for cmd, methods in (("faithfulness", "random,saliency"), ("sanity", "saliency,input")):
        common = [cmd, "--model", str(model), "--data", str(data), "--custom-module",
                  str(module), "--methods", methods, "--samples", "20", "--json"]
        plain = CliRunner().invoke(main, common)
        fanned = CliRunner().invoke(main, [*common, "--ray", "--shards", "2"])
        assert plain.exit_code == 0, plain.output
        assert fanned.exit_code == 0, fanned.output
        assert fanned.stdout == plain.stdout  # the JSON contract, character for character
        assert "ray: shard 2/2 done" in fanned.stderr
        out = json.loads(plain.stdout)
        assert out["samples"] == 20
        numbers = out["deletion_area"] if cmd == "faithfulness" else out["correlation"]
        assert any(isinstance(v, float) for v in _leaves(numbers))  # guard: something measured


def _leaves(tree):
    """Every leaf of nested lists and dicts."""
    items = tree.values() if isinstance(tree, dict) else tree
    for item in items:
        if isinstance(item, (list, dict)):
            yield from _leaves(item)
        else:
            yield item
