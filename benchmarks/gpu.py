"""The GPU path, checked: the benchmark's process section on a GPU, with the ratios.

    python benchmarks/gpu.py [--out gpu-benchmark.json] [--repeats N] [--allow-cpu]

For a machine with an accelerator (one short run, a few minutes at full size): it says which
GPUs TensorFlow sees, then times every probe as the `probe` command against the hand-written
TensorFlow baseline, each in its own process on the same device (benchmarks/run.py's
`processes` section, full size), checks that the deterministic probes agree with their
baselines (max relative difference of the mean effects), and prints one line per probe and the
targets: integrated gradients and input x gradient at <= 0.5x the dense baseline (the one-hot
path), ablation faster than its dense baseline, every probe within 1.2x. The JSON
(benchmarks/run.py's keys, plus "gpus") goes to --out.

With no GPU visible it prints why and exits 2 (a CPU run of the same section is
`python benchmarks/run.py --only processes`); --allow-cpu runs it anyway, for checking this
script where there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def gpus() -> list[str]:
    """The GPUs TensorFlow sees, by name and model (without starting anything else)."""
    from probes.engine.quiet import import_tensorflow

    tf = import_tensorflow()
    out = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        out.append(f"{device.name} ({details.get('device_name', 'unknown model')})")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-benchmark.json")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each process; the fastest is kept")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run even when no GPU is visible (to check this script)")
    args = parser.parse_args(argv)
    found = gpus()
    if not found and not args.allow_cpu:
        print("no GPU visible to TensorFlow: nothing to check here (the CPU run is "
              "`python benchmarks/run.py --only processes`)", file=sys.stderr)
        return 2
    print(f"GPUs: {', '.join(found) or 'none (--allow-cpu: running on the CPU)'}", flush=True)
    from benchmarks import run

    code = run.main(["--only", "processes", "--out", args.out, "--repeats",
                     str(args.repeats)])
    result = json.loads(Path(args.out).read_text())
    result["gpus"] = found
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("\nratios on this device (toolkit / dense baseline; whole processes, and compute "
          "inside them):")
    for r in result["probes"]:
        diff = "" if r["max_rel_diff"] is None else f", max rel diff {r['max_rel_diff']:.1e}"
        print(f"  {r['probe']:34s} {r['ratio']:5.2f}x  ({r['toolkit_seconds']:.2f}s vs "
              f"{r['baseline_seconds']:.2f}s); compute {r['compute_ratio']:5.2f}x "
              f"({r['toolkit_compute_seconds']:.2f}s vs {r['baseline_compute_seconds']:.2f}s)"
              f"{diff}; {r['toolkit_path']} path")
    missed = [t for t in result["targets"] if not t["met"]]
    print(f"targets: {len(result['targets']) - len(missed)} met, {len(missed)} missed"
          + "".join(f"\n  MISS {t['target']}: {t['detail']}" for t in missed))
    return code


if __name__ == "__main__":
    sys.exit(main())
