"""Options, output directories, interrupted runs, damaged run directories, inputs beyond the
saved held-out set, determinism.

Every failure ends in one line naming the problem and a non-zero exit; an interrupted run leaves
no partial result and no half-trained model that a later run could reuse.
"""

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from probes.results import atomic, result as presult
from probes.run.registry import PROBES
from tests import models as m
from tests.test_cli import TINY_ARGS
from tests.test_robustness import cli, error

N = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return m.save_three_by_three(tmp_path_factory.mktemp("out-files"), N)


def _ablate(files, out, *extra):
    return ["ablate", "--model", files / "model.keras", "--data", files / "data.npz", "--mode",
            "zero", "--out", out, *extra]


STEM = "ablation-zero-n30-seed0"


# Options ---------------------------------------------------------------------------------

VARIANTS = "'siamese' is not one of 'concat', 'separate', 'concat_mlp'"
MODES = "'drop' is not one of 'shuffle', 'zero', 'mean', 'noise', 'occlusion'"


@pytest.mark.parametrize("args,fragment", [
    (["ablate", "--variant", "concat", "--samples", "-3"], "-3 is not in the range x>=1"),
    (["ablate", "--variant", "siamese"], VARIANTS),
    (["ablate", "--variant", "concat", "--mode", "drop"], MODES),
    (["attribute", "--variant", "concat", "--method", "lrp"], "'lrp' is not one of"),
    (["attribute", "--variant", "concat", "--steps", "0"], "0 is not in the range 1<=x<=100000"),
    (["attribute", "--variant", "concat", "--steps", "100001"], "1<=x<=100000"),
    (["ablate", "--variant", "concat", "--permutations", "0"], "1<=x<=1000"),
    (["ablate", "--variant", "concat", "--batch-size", "0"], "0 is not in the range x>=1"),
    (["train", "--seq-len", "1"], "1 is not in the range x>=2"),
    (["train", "--task-1", "nand"], "'nand' is not one of"),
    (["train", "--same-rate", "2"], "2.0 is not in the range 0<=x<=1"),
])
def test_bad_options_list_the_valid_choices(args, fragment):
    error(args, fragment, code=2)


def test_occlusion_window_longer_than_the_input(files):
    error(["ablate", "--model", files / "model.keras", "--data", files / "data.npz", "--mode",
           "occlusion", "--window", "9"], "Expected an occlusion window in [1, 4]; received 9")


# Output ----------------------------------------------------------------------------------


def test_a_missing_out_directory_is_created(files, tmp_path):
    out = tmp_path / "new" / "nested"
    cli(_ablate(files, out))
    # The result's pair of files, and the folder's manifest (what was saved, from what).
    assert sorted(p.name for p in out.iterdir()) == [f"{STEM}.json", f"{STEM}.npz",
                                                     "manifest.json"]


@pytest.fixture()
def read_only_dir(tmp_path):
    """An existing directory this process cannot create files in."""
    if os.geteuid() != 0:
        d = tmp_path / "read-only"
        d.mkdir()
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
    elif Path("/sys/kernel").is_dir():
        yield Path("/sys/kernel")  # sysfs: not even root creates files there
    else:
        pytest.skip("no directory that root cannot write to")


@pytest.mark.parametrize("where,reasons", [
    ("under-a-file", ["Not a directory"]),
    ("read-only", ["Permission denied"]),
    ("inside-read-only", ["Permission denied", "Operation not permitted"]),
])
def test_an_unwritable_out_fails_before_the_probe_runs(files, tmp_path, read_only_dir, where,
                                                       reasons):
    (tmp_path / "file").write_text("")
    out = {"under-a-file": tmp_path / "file" / "sub", "read-only": read_only_dir,
           "inside-read-only": read_only_dir / "mtl-probe-out"}[where]
    result = cli(_ablate(files, out), code=1)
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"Error: Expected a writable --out directory; received {str(out)!r}")
    assert any(line.endswith(f": {reason}") for reason in reasons), line
    assert "ablation/zero of" not in result.stderr  # refused before the work, not after


def test_an_out_that_is_a_file_is_a_usage_error(files, tmp_path):
    (tmp_path / "file").write_text("")
    error(_ablate(files, tmp_path / "file"), "is a file", code=2)


def test_an_existing_result_is_replaced_whole(files, tmp_path):
    args = ["ablate", "--model", files / "model.keras", "--data", files / "data.npz", "--out",
            tmp_path, "--permutations"]
    cli(args + ["2"])
    first = presult.load(tmp_path / "ablation-shuffle-n30-seed0.json")
    cli(args + ["3"])
    second = presult.load(tmp_path / "ablation-shuffle-n30-seed0.json")
    assert first.params["permutations"] == 2 and second.params["permutations"] == 3
    assert not np.array_equal(first.effects, second.effects)  # really rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ablation-shuffle-n30-seed0.json", "ablation-shuffle-n30-seed0.npz",
        "manifest.json"]  # no temp files


def test_ctrl_c_during_the_probe_leaves_no_result(files, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(PROBES, "ablation/zero", interrupted)
    result = cli(_ablate(files, tmp_path / "out"), code=1)
    assert "Aborted!" in result.output
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_while_saving_is_held_until_both_files_are_written(files, tmp_path, monkeypatch):
    write_npz = atomic.write_npz

    def then_ctrl_c(*args, **kwargs):
        written = write_npz(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # between the .npz and the .json
        return written

    monkeypatch.setattr(atomic, "write_npz", then_ctrl_c)
    # The handler in force before (Python's default, or SIG_IGN in a background job).
    before = signal.getsignal(signal.SIGINT)
    result = cli(_ablate(files, tmp_path), code=1)
    assert "Aborted!" in result.output  # the interrupt is not lost, only held
    saved = presult.load(tmp_path / f"{STEM}.json")  # and the pair is complete
    assert saved.effects.shape == (3, 3, N)
    assert signal.getsignal(signal.SIGINT) is before  # and the handler is restored


@pytest.mark.slow
def test_interrupted_training_leaves_nothing_a_later_run_reuses(tmp_path, monkeypatch):
    write_json = atomic.write_json

    def interrupt_at_manifest(path, obj):
        if Path(path).name == "manifest.json":  # the last file of a run directory
            raise KeyboardInterrupt
        return write_json(path, obj)

    monkeypatch.setattr(atomic, "write_json", interrupt_at_manifest)
    args = ["train", "--variant", "separate", "--cache-dir", tmp_path] + TINY_ARGS
    assert "Aborted!" in cli(args, code=1).output
    assert list((tmp_path / "runs").iterdir()) == []  # no run, no staging directory
    monkeypatch.setattr(atomic, "write_json", write_json)
    again = json.loads(cli(args + ["--json"]).stdout)
    assert again["trained"] is True and (Path(again["run"]) / "manifest.json").is_file()


def test_an_unwritable_cache_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    result = cli(["train", "--cache-dir", tmp_path / "file" / "cache"] + TINY_ARGS, code=1)
    assert "Expected a writable cache directory" in result.output
    assert "training" not in result.stderr


# Beyond the saved held-out set -----------------------------------------------------------

def test_samples_beyond_the_saved_heldout_are_generated(tiny_runs):
    run = tiny_runs["concat"]
    result = cli(["ablate", "--run", run.path, "--samples", "1100", "--mode", "zero", "--json"])
    assert "generating 100 held-out pairs beyond the 1000 saved" in result.stderr
    out = json.loads(result.stdout)
    assert out["samples"] == 1100 and out["verdict"] == [["depends"] * 2] * 2


def test_generated_pairs_are_deterministic_prefix_stable_and_labelled(tiny_runs):
    run = tiny_runs["concat"]
    saved, saved_labels = run.heldout()
    small, small_labels = run.heldout(1100)
    large, large_labels = run.heldout(2500)
    assert len(small) == 1100 and len(large) == 2500
    np.testing.assert_array_equal(small.codes_a[:1000], saved.codes_a)  # the saved ones first
    np.testing.assert_array_equal(small_labels["head_1"][:1000], saved_labels["head_1"])
    np.testing.assert_array_equal(large.codes_b[:1100], small.codes_b)  # prefix-stable
    np.testing.assert_array_equal(run.heldout(1100)[0].codes_a, small.codes_a)  # repeatable
    spec = run.config.spec()
    for head, task in zip(("head_1", "head_2"), run.config.tasks):
        np.testing.assert_array_equal(large_labels[head], large.labels(task, spec))
    # Guard: the generated pairs are new tweets, not copies of the saved ones.
    assert not any(np.array_equal(large.codes_a[1000 + i], saved.codes_a[i]) for i in range(50))
    assert small.codes_a.dtype == np.int16 and large_labels["head_2"].dtype == np.float32


# Determinism -----------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["files", "run"])
def test_same_seed_same_json_bit_for_bit(files, tiny_runs, tmp_path, source):
    if source == "files":
        args = ["ablate", "--model", files / "model.keras", "--data", files / "data.npz"]
    else:
        args = ["ablate", "--run", tiny_runs["separate"].path, "--samples", "1050"]
    args += ["--seed", "7", "--permutations", "2", "--json"]
    first = cli(args + ["--out", tmp_path / "a"])
    second = cli(args + ["--out", tmp_path / "b"])
    assert first.stdout == second.stdout and json.loads(first.stdout)["seed"] == 7
    a, b = (presult.load(next((tmp_path / d).glob("ablation-*.json"))) for d in "ab")
    np.testing.assert_array_equal(a.effects, b.effects)
    other = cli(args[:-5] + ["--seed", "8", "--permutations", "2", "--json"])
    assert json.loads(other.stdout)["effect"] != json.loads(first.stdout)["effect"]  # guard


# Damaged run directories -----------------------------------------------------------------

@pytest.mark.parametrize("name,fragment", [
    ("heldout.npz", "Expected held-out data in"),
    ("model.keras", "Expected a loadable model.keras in"),
])
def test_a_damaged_run_directory_is_named(tiny_runs, tmp_path, name, fragment):
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["separate"].path, run)
    (run / name).write_bytes((run / name).read_bytes()[:100])
    error(["ablate", "--run", run, "--mode", "zero"], fragment, str(run))


def test_written_files_get_the_umasks_permissions(tmp_path):
    """Atomic writes go through a private temporary file (mkstemp: 0600); the file written
    gets what open() would give it (0666 less the process's umask), so others can read a
    report."""
    from probes.results import atomic

    path = atomic.write_bytes(tmp_path / "r.html", b"x")
    with open(tmp_path / "plain", "wb") as f:  # what open() gives, for comparison
        f.write(b"x")
    assert path.read_bytes() == b"x"
    assert (path.stat().st_mode & 0o777) == ((tmp_path / "plain").stat().st_mode & 0o777)
    assert (path.stat().st_mode & 0o777) != 0o600 or atomic._UMASK & 0o066 == 0o066
