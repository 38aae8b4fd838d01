"""Shards and merge: a probe split into shards equals the unsharded run exactly."""

import dataclasses
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import probes
from probes.model.onehot import OneHot
from mtl_models.variants import build_model
from probes.cli import main
from probes.engine.forward import chunks, layout
from probes.results.seeds import generator
from probes.run import shards
from probes.run.registry import PROBES
from tests.models import same_result

N = 103  # not a multiple of the shard count or of any pass width below


@pytest.fixture(scope="module")
def separate():
    """A tiny `separate` model and one-hot pairs with empty (PAD) steps, lazy and as arrays."""
    model = build_model("separate", seq_len=12, features=16, units=8, seed=1)
    rng = np.random.default_rng(0)
    codes = {k: rng.integers(-1, 16, size=(N, 12)) for k in ("tweet_a", "tweet_b")}
    labels = {"head_1": rng.integers(0, 2, N), "head_2": rng.integers(0, 2, N)}
    return model, codes, labels


# Pass widths that cut across the shards' boundaries: ablation passes of 16 rows, integrated
# gradients' passes of 64 // 8 = 8 samples, smoothgrad's of 50 // 16 = 3.
CASES = [("ablation/shuffle", {"batch_size": 16, "permutations": 3}),
         ("ablation/occlusion", {"batch_size": 32}),
         ("attribution/integrated_gradients",
          {"steps": 8, "baseline": "shuffle", "batch_size": 64, "maps": True}),
         ("attribution/input_x_gradient", {"batch_size": 16}),
         ("attribution/smoothgrad", {"batch_size": 50, "noise_samples": 16})]


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy-one-hot", "arrays"])
@pytest.mark.parametrize("probe,params", CASES, ids=[c[0] for c in CASES])
def test_four_shards_merged_equal_the_unsharded_run_exactly(separate, probe, params, lazy):
    model, codes, labels = separate
    inputs = {k: OneHot(c, 16) if lazy else np.asarray(OneHot(c, 16)) for k, c in codes.items()}
    lab = labels if probe.startswith("ablation") else None  # loss effects too
    full = PROBES[probe](model, inputs, rng=generator(0, "probe"), labels=lab, seed=0, **params)
    parts = [shards.run_shard(probe, model, inputs, shard=f"{k}/4", labels=lab, seed=0,
                              **params) for k in (3, 1, 4, 2)]  # any order
    assert [len(p.sample_ids) for p in parts] == [26, 26, 25, 26]
    same_result(full, shards.merge(parts))
    # Guards: the path cells moved on most samples, the cross cells are exactly 0.0.
    assert np.count_nonzero(full.effects[[0, 1], [0, 1]]) >= 2 * N - 4
    np.testing.assert_array_equal(full.effects[[0, 1], [1, 0]], 0.0)
    if lab is not None and probe == "ablation/shuffle":
        assert full.loss_effects is not None and np.any(full.loss_effects)


def test_layout_of_all_samples_is_the_plain_chunking_and_a_subset_keeps_its_positions():
    assert [(p.start, p.stop) for p in layout(np.arange(103), 103, 16)] == list(chunks(103, 16))
    assert all(p.offset == 0 and p.width == 15 for p in layout(np.arange(103), 103, 16))
    # Samples 20..49 of 103 in passes of 15: 20-29 at offset 5 of the second pass, 30-44 the
    # whole third, 45-49 at the start of the fourth; ids 60, 61 then 7 apart.
    got = [tuple(p) for p in layout(np.r_[20:50, 60, 61, 7], 103, 16)]
    assert got == [(0, 10, 5, 15), (10, 25, 0, 15), (25, 30, 0, 15), (30, 32, 0, 15),
                   (32, 33, 7, 15)]


def test_unreliable_cells_are_derived_from_every_shard():
    # A head behind saturated tanh units: attributions exactly 0 everywhere, but zeroing the
    # input moves it, except on shard 1, whose samples are all zero already. The merged
    # result must still call the cell unreliable, as the unsharded run does.
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="head")(
        keras.layers.Dense(4, activation="tanh", name="hidden")(x)))
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(size=w.shape).astype("float32") + 0.5
                       for w in model.get_weights()])
    data = (rng.normal(size=(24, 3)) * 1e38).astype("float32")
    data[:6] = 0.0  # shard 1 of 4
    inputs = {"x": data}
    kw = {"steps": 8, "batch_size": 8}
    full = PROBES["attribution/integrated_gradients"](model, inputs, rng=generator(0, "probe"),
                                                      seed=0, **kw)
    parts = [shards.run_shard("attribution/integrated_gradients", model, inputs,
                              shard=(k, 4), seed=0, **kw) for k in range(1, 5)]
    assert parts[0].params["unreliable"] == []  # shard 1 alone sees nothing move
    assert [u["input"] for u in full.params["unreliable"]] == ["x"]
    same_result(full, shards.merge(parts))


def test_merge_refuses_what_is_not_one_whole_run(separate):
    model, codes, _ = separate
    inputs = {k: OneHot(c, 16) for k, c in codes.items()}
    parts = [shards.run_shard("ablation/zero", model, inputs, shard=(k, 4), seed=0)
             for k in range(1, 5)]
    with pytest.raises(ValueError, match=r"no result for samples 52-77 \(shards given: 1, 2, 4"):
        shards.merge(parts[:2] + parts[3:])
    with pytest.raises(ValueError, match=r"samples 26-51 more than once"):
        shards.merge(parts + parts[1:2])
    other = shards.run_shard("ablation/zero", model, inputs, shard=(4, 4), seed=0,
                             batch_size=8)
    with pytest.raises(ValueError, match=r"the same parameter batch_size\); received shard 4/4"):
        shards.merge(parts[:3] + [other])
    renamed = dataclasses.replace(parts[3], model="another")
    with pytest.raises(ValueError, match=r"the same model\)"):
        shards.merge(parts[:3] + [renamed])
    three = shards.run_shard("ablation/zero", model, inputs, shard=(3, 3), seed=0)
    with pytest.raises(ValueError, match=r"the same shard count"):
        shards.merge(parts[:3] + [three])
    whole = PROBES["ablation/zero"](model, inputs, rng=generator(0, "probe"), seed=0)
    with pytest.raises(ValueError, match="received a complete ablation-zero result"):
        shards.merge([whole])
    with pytest.raises(ValueError, match="fixed number of steps"):
        shards.run_shard("attribution/integrated_gradients", model, inputs, shard="1/2")
    with pytest.raises(ValueError, match="per-sample probe"):
        shards.run_shard("shared/coupling", model, inputs, shard="1/2")
    for bad in ("0/4", "5/4", "2-4", "x"):
        with pytest.raises(ValueError, match="Expected a shard K/N"):
            shards.parse(bad)


def test_python_api_shards_and_merges(separate, tmp_path):
    model, codes, _ = separate
    data = {k: np.asarray(OneHot(c, 16)) for k, c in codes.items()}
    full = probes.attribute(model, data, steps=8, batch_size=64)
    paths = [probes.attribute(model, data, steps=8, batch_size=64, shard=f"{k}/3").save(
        tmp_path / f"s{k}", f"part{k}") for k in (1, 2, 3)]
    same_result(full, probes.merge(paths))  # from the saved files


def _cli(args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def test_cli_shards_merge_to_the_unsharded_json_and_fingerprint(separate, tmp_path):
    model, codes, _ = separate
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **{k: np.asarray(OneHot(c, 16)) for k, c in codes.items()})
    base = ["--model", tmp_path / "m.keras", "--data", tmp_path / "d.npz"]
    for cmd, extra in (("ablate", []), ("attribute", ["--steps", "8", "--baseline", "mean"])):
        full = json.loads(_cli([cmd, *base, *extra, "--json", "--no-compare"] if cmd ==
                               "attribute" else [cmd, *base, "--json"]).stdout)
        out = tmp_path / cmd
        for k in (1, 2, 3):
            line = json.loads(_cli([cmd, *base, *extra, "--shard", f"{k}/3", "--out",
                                    out / f"s{k}", "--json"]).stdout)
            assert line["shard"] == {"index": k, "count": 3, "samples": N}
        merged = _cli(["merge", out / "s1", out / "s2", out / "s3", "--out", out / "all",
                       "--json"])
        assert json.loads(merged.stdout) == full
        (saved,) = (out / "all").glob("a*-seed0.json")  # besides the folder's manifest
        assert "shard" not in saved.stem
        meta = json.loads(saved.read_text())
        # The merged result carries the unsharded run's fingerprint: a report reuses it.
        unsharded = _cli([cmd, *base, *extra, "--out", out / "plain"] +
                         (["--no-compare"] if cmd == "attribute" else []))
        assert unsharded.exit_code == 0
        plain = json.loads((out / "plain" / saved.name).read_text())
        assert meta["fingerprint"] == plain["fingerprint"]
    error = _cli(["merge", tmp_path / "ablate" / "s1", tmp_path / "ablate" / "s3"], code=1)
    (line,) = [x for x in error.output.splitlines() if x.startswith("Error:")]
    assert "no result for samples 35-68" in line
    none = _cli(["merge", tmp_path], code=1)
    assert "Expected shard results" in none.output
    needs_out = _cli(["ablate", *base, "--shard", "1/2"], code=2)
    assert "Expected --out DIR with --shard" in needs_out.output


# Faithfulness: random keys drawn for every sample, occlusion and integrated gradients in the
# whole run's passes, curves of 11 fractions in passes of 40 // 11 = 3 samples. Sanity: maps of
# a gradient method with noise and of integrated gradients on every randomised clone.
CHECKS = [("faithfulness", {"batch_size": 40, "methods": ["random", "occlusion",
                                                           "integrated_gradients"]}),
          ("sanity", {"batch_size": 40, "methods": ["smoothgrad", "integrated_gradients",
                                                     "input"]})]


@pytest.mark.parametrize("probe,params", CHECKS, ids=[c[0] for c in CHECKS])
def test_faithfulness_and_sanity_shards_merge_to_the_unsharded_run_exactly(separate, probe,
                                                                           params):
    model, codes, _ = separate
    inputs = {k: OneHot(c[:40], 16) for k, c in codes.items()}  # 40: these run every method
    full = PROBES[probe](model, inputs, rng=generator(0, "probe"), seed=0, **params)
    parts = [shards.run_shard(probe, model, inputs, shard=f"{k}/3", seed=0, **params)
             for k in (2, 3, 1)]
    assert [len(p.sample_ids) for p in parts] == [13, 13, 14]
    same_result(full, shards.merge(parts))  # NaN where a map is constant: equal as NaN
    # Guards: the per-sample arrays vary over the samples (a shard could not pass as another).
    per_sample = full.deletion if probe == "faithfulness" else full.correlation
    assert np.unique(per_sample[np.isfinite(per_sample)]).size > 40
    with pytest.raises(ValueError, match="no first= with background or sample_ids"):
        shards.run_shard(probe, model, inputs, shard="1/3", seed=0, first=5, **params)
    with pytest.raises(ValueError, match=r"the same parameter methods"):
        other = dict(params, methods=params["methods"][:1])
        shards.merge(parts[:2] + [shards.run_shard(probe, model, inputs, shard="1/3", seed=0,
                                                   **other)])


def test_cli_faithfulness_shards_merge_to_the_unsharded_json(separate, tmp_path):
    model, codes, _ = separate
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **{k: np.asarray(OneHot(c, 16)) for k, c in codes.items()})
    base = ["--model", tmp_path / "m.keras", "--data", tmp_path / "d.npz", "--samples", "30",
            "--methods", "random,saliency", "--batch-size", "33"]
    for cmd in ("faithfulness", "sanity"):
        args = base if cmd == "faithfulness" else base[:6] + ["--methods", "saliency,input"]
        full = json.loads(_cli([cmd, *args, "--json"]).stdout)
        for k in (1, 2):
            _cli([cmd, *args, "--shard", f"{k}/2", "--out", tmp_path / cmd / f"s{k}", "--json"])
        merged = _cli(["merge", tmp_path / cmd / "s1", tmp_path / cmd / "s2", "--json"])
        assert json.loads(merged.stdout) == full
        assert full["samples"] == 30
