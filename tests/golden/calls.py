"""The calls whose results must not change when the code moves (issue 26): every probe command's
`--json` on both seed variants, and the Python API's results for the same probes, at tiny sizes.

    python -m tests.golden.calls      # records tests/golden/behaviour.json (before a move)

tests/test_unchanged.py makes the same calls and compares every field with the record. Only
public surfaces are used (the `probe` command, `probes.*`, `mtl_models.runs`), so the calls
stay the same whatever moves inside the packages.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

RECORD = Path(__file__).with_name("behaviour.json")
TINY = dict(seq_len=12, features=16, units=8, hidden=16, min_len=5, n_train=600, n_val=200,
            n_heldout=200, epochs=3, batch_size=128, learning_rate=1e-2, patience=10, seed=0)
SAMPLES = 64
# Fields that say where or how long, not what was measured.
VOLATILE = {"seconds", "path", "paths", "out", "run", "run_dir", "versions", "created",
            "elapsed", "timings", "file", "files", "results_dir"}

# (name, arguments after `probe`); each also gets --run RUN --json (and --samples where taken).
COMMANDS = [
    ("ablate-shuffle", ["ablate", "--mode", "shuffle", "--permutations", "2"]),
    ("ablate-zero", ["ablate", "--mode", "zero"]),
    ("ablate-mean", ["ablate", "--mode", "mean"]),
    ("ablate-noise", ["ablate", "--mode", "noise", "--permutations", "2"]),
    ("ablate-occlusion", ["ablate", "--mode", "occlusion"]),
    ("attribute-saliency", ["attribute", "--method", "saliency"]),
    ("attribute-input_x_gradient", ["attribute", "--method", "input_x_gradient"]),
    ("attribute-integrated_gradients", ["attribute", "--method", "integrated_gradients",
                                        "--steps", "4"]),
    ("attribute-smoothgrad", ["attribute", "--method", "smoothgrad"]),
    ("shared", ["shared"]),
    ("paths", ["paths"]),
    ("faithfulness", ["faithfulness", "--methods", "saliency,integrated_gradients"]),
    ("sanity", ["sanity", "--methods", "saliency,input"]),
    ("structure", ["structure"]),
]
NO_SAMPLES = {"structure"}


def train(cache: Path) -> dict:
    """The two tiny seed runs, trained in `cache`: {variant: run directory}."""
    from mtl_models import runs

    out = {}
    for variant in ("concat", "separate"):
        path, _ = runs.train_run(runs.TrainConfig(variant=variant, **TINY), cache=cache)
        out[variant] = Path(path)
    return out


def clean(value):
    """JSON-ready `value` without the volatile fields (recursively)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def cli_outputs(run_dirs: dict, work: Path) -> dict:
    """{"<variant>/<command>": the command's JSON}, paths under `work` written `<work>`."""
    from click.testing import CliRunner

    from probes.cli import main

    got = {}
    for variant, path in run_dirs.items():
        for name, args in COMMANDS:
            full = [*args, "--run", str(path), "--json"]
            if name not in NO_SAMPLES:
                full += ["--samples", str(SAMPLES)]
            result = CliRunner().invoke(main, full)
            if result.exit_code != 0:
                raise AssertionError(f"probe {' '.join(full)}: exit {result.exit_code}: "
                                     f"{result.output[-2000:]}")
            got[f"{variant}/{name}"] = clean(json.loads(result.stdout.replace(str(work),
                                                                                "<work>")))
    return got


def _one_hot(codes: np.ndarray, features: int) -> np.ndarray:
    out = np.zeros((*codes.shape, features), np.float32)
    rows, steps = np.nonzero(codes >= 0)
    out[rows, steps, codes[rows, steps]] = 1.0
    return out


def api_outputs(run_dirs: dict, out_dir: Path) -> dict:
    """{"<variant>/<call>": the saved JSON of the result plus its arrays as lists}, from the
    Python API on the run's model file and its first held-out pairs as dense one-hot arrays."""
    import probes

    got = {}
    for variant, path in run_dirs.items():
        held = np.load(path / "heldout.npz")
        data = {"tweet_a": _one_hot(held["codes_a"][:SAMPLES], TINY["features"]),
                "tweet_b": _one_hot(held["codes_b"][:SAMPLES], TINY["features"])}
        labels = {h: held[h][:SAMPLES] for h in ("head_1", "head_2")}
        model = probes.load_model(path / "model.keras")
        calls = {
            "ablate": lambda: probes.ablate(model, data, permutations=2),
            "attribute": lambda: probes.attribute(model, data, steps=4),
            "task_gradients": lambda: probes.task_gradients(model, data, labels=labels),
            "coupling": lambda: probes.coupling(model, data, labels=labels),
            "decompose": lambda: probes.decompose(model, data),
            "interaction": lambda: probes.interaction(model, data),
            "faithfulness": lambda: probes.faithfulness(
                model, data, methods=["saliency", "integrated_gradients"]),
            "sanity": lambda: probes.sanity(model, data, methods=["saliency", "input"]),
            "structure": lambda: probes.structure(model),
        }
        for name, call in calls.items():
            saved = Path(probes.save(call(), out_dir / variant / name))
            document = json.loads(saved.read_text())
            arrays = np.load(saved.with_suffix(".npz"))
            got[f"{variant}/{name}"] = clean({
                "json": document, "arrays": {k: arrays[k].tolist() for k in sorted(arrays)}})
    return got


def collect(work: Path) -> dict:
    """Every recorded call's output, computed now in `work` (a fresh cache and results)."""
    before = os.environ.get("MTL_PROBE_CACHE")
    os.environ["MTL_PROBE_CACHE"] = str(work / "cache")
    try:
        run_dirs = train(work / "cache")
        return {"cli": cli_outputs(run_dirs, work),
                "api": api_outputs(run_dirs, work / "api")}
    finally:
        if before is None:
            del os.environ["MTL_PROBE_CACHE"]
        else:
            os.environ["MTL_PROBE_CACHE"] = before


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        record = collect(Path(tmp))
    RECORD.write_text(json.dumps(record, sort_keys=True) + "\n")
    print(f"recorded {sum(len(v) for v in record.values())} outputs in {RECORD}")
