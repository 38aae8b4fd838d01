"""Whole-process timings: every probe as the `probe` command against the plain baseline.

Each command runs as its own process; its wall time includes Python and TensorFlow start-up,
and its peak resident memory comes from the kernel's accounting of that one child
(`os.wait4`). With `shared=True` (--quick) each side instead runs all its probes in one
process, the two sides run at the same time, and a probe's seconds are measured inside its
process (start-up excluded): a smoke test, not a measurement.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import workload

ROOT = Path(__file__).resolve().parent.parent
GRADIENT = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
ABLATION = ("shuffle", "zero", "mean", "noise", "occlusion")
PROBES = [f"attribution/{m}" for m in GRADIENT] + [f"ablation/{m}" for m in ABLATION]
# Probes whose numbers do not depend on random draws: the toolkit and the baseline must agree.
DETERMINISTIC = ("attribution/saliency", "attribution/input_x_gradient",
                 "attribution/integrated_gradients", "ablation/zero", "ablation/mean",
                 "ablation/occlusion")
# The `probe` command, which also writes the seconds of its probe's computation (the registered
# probe function on the loaded model and data, as the baseline's compute_seconds: no start-up,
# loading, statistics or printing) to stderr's last line.
CLI = ("import json, sys, time\n"
       "from probes import suite\n"
       "from probes.cli import main\n"
       "compute, spent = suite.compute, []\n"
       "def timed(*args, **kwargs):\n"
       "    started = time.perf_counter()\n"
       "    out = compute(*args, **kwargs)\n"
       "    spent.append(time.perf_counter() - started)\n"
       "    return out\n"
       "suite.compute = timed\n"
       "sys.argv[0] = 'probe'\n"
       "try:\n"
       "    main()\n"
       "finally:\n"
       "    print(json.dumps({'compute_seconds': sum(spent)}), file=sys.stderr, flush=True)\n")
DRIVER = ("import contextlib, io, json, sys, time\n"
          "from probes.cli import main\n"
          "for args in json.loads(sys.argv[1]):\n"
          "    buf, t = io.StringIO(), time.perf_counter()\n"
          "    with contextlib.redirect_stdout(buf):\n"
          "        main(args, standalone_mode=False)\n"
          "    print(json.dumps({'seconds': time.perf_counter() - t, "
          "'output': json.loads(buf.getvalue())}), flush=True)\n")


def environment() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                                      [env.get("PYTHONPATH")] if p])
    return env


def timed(cmd: list[str], timeout: float = 1800) -> dict:
    """Runs `cmd` as a child process; returns its wall and CPU seconds, peak RSS and output.

    Raises:
        RuntimeError: the command failed (its stderr's last lines are in the message).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        import subprocess

        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=environment())
        deadline = started + timeout
        while True:  # wait4 gives this child's own rusage, unlike RUSAGE_CHILDREN
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"Expected {cmd[:4]}... to succeed; received exit status "
                           f"{proc.returncode}:\n{tail}")
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes": usage.ru_maxrss * 1024, "stdout": stdout, "stderr": stderr}


def toolkit_args(probe: str, model: str, data: str, sizes: workload.Sizes) -> list[str]:
    """The `probe` command line of a probe (same work as the baseline)."""
    family, _, method = probe.partition("/")
    common = ["--model", model, "--data", data, "--samples", str(sizes.samples),
              "--batch-size", str(sizes.batch_size), "--json"]
    if family == "attribution":
        # The baseline integrates with midpoint Riemann nodes: the same nodes, the same numbers.
        quad = ["--quadrature", "riemann"] if method == "integrated_gradients" else []
        return ["attribute", *common, "--method", method, "--baseline", "zero",
                "--steps", str(sizes.steps), *quad, "--no-compare"]
    extra = ["--window", str(-(-sizes.seq_len // sizes.windows))] if method == "occlusion" else []
    return ["ablate", *common, "--mode", method, "--permutations", str(sizes.permutations),
            *extra]


def baseline_cmd(jobs: list[str], model: str, data: str, sizes: workload.Sizes) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "baseline.py"), model, data, *jobs,
            "--samples", str(sizes.samples), "--steps", str(sizes.steps),
            "--noise-samples", str(sizes.noise_samples), "--permutations",
            str(sizes.permutations), "--windows", str(sizes.windows),
            "--batch-size", str(sizes.batch_size)]


def startup(model: str) -> dict:
    """The floor both sides pay: start Python, import TensorFlow and Keras, load the model."""
    code = ("import keras, tensorflow, sys; "
            "keras.saving.load_model(sys.argv[1], compile=False)")
    run = timed([sys.executable, "-c", code, model])
    return {k: run[k] for k in ("seconds", "cpu_seconds", "peak_rss_bytes")}


def compare(probe: str, base: dict, toolkit: dict) -> float | None:
    """Largest relative difference of the mean effects (deterministic probes only)."""
    if probe not in DETERMINISTIC:
        return None
    worst = 0.0
    for row_b, row_t in zip(base["effect"], toolkit["effect"]):
        for b, t in zip(row_b, row_t):
            worst = max(worst, abs(b - t) / max(abs(b), 1e-12))
    return worst


def path(output: dict) -> str:
    """Which path the toolkit took, from its JSON: "one-hot" when some input ran from
    gathered kernel rows (params["one_hot"], probes.engine.onehot_path), else "dense"."""
    return "one-hot" if output.get("params", {}).get("one_hot") else "dense"


def measure(model: str, data: str, sizes: workload.Sizes, *, shared: bool,
            report=print) -> list[dict]:
    """Times every probe against its baseline; one record per probe (see run.py's keys)."""
    records = []
    if shared:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:  # a smoke test: both sides at once
            base_run = pool.submit(timed, baseline_cmd(PROBES, model, data, sizes))
            tool_run = pool.submit(timed, [sys.executable, "-c", DRIVER, json.dumps(
                [toolkit_args(p, model, data, sizes) for p in PROBES])])
            base_run, tool_run = base_run.result(), tool_run.result()
        base_lines = [json.loads(line) for line in base_run["stdout"].splitlines()]
        tool_lines = [json.loads(line) for line in tool_run["stdout"].splitlines()]
    for index, probe in enumerate(PROBES):
        if shared:
            base, tool = base_lines[index], tool_lines[index]["output"]
            base_s, tool_s = base["compute_seconds"], tool_lines[index]["seconds"]
            base_compute, tool_compute = base_s, tool_s
            base_rss, tool_rss = base_run["peak_rss_bytes"], tool_run["peak_rss_bytes"]
            base_cpu, tool_cpu = base_run["cpu_seconds"], tool_run["cpu_seconds"]  # all probes
        else:
            base_s = tool_s = base_compute = tool_compute = float("inf")
            for _ in range(sizes.repeats):  # the fastest of the repeats: least disturbed by others
                b = timed(baseline_cmd([probe], model, data, sizes))
                t = timed([sys.executable, "-c", CLI,
                           *toolkit_args(probe, model, data, sizes)])
                if b["seconds"] < base_s:
                    base_s, base_cpu, base_rss = b["seconds"], b["cpu_seconds"], b["peak_rss_bytes"]
                    base = json.loads(b["stdout"])
                if t["seconds"] < tool_s:
                    tool_s, tool_cpu, tool_rss = t["seconds"], t["cpu_seconds"], t["peak_rss_bytes"]
                    tool = json.loads(t["stdout"])
                # Compute seconds: the least disturbed of the repeats, on each side.
                base_compute = min(base_compute, json.loads(b["stdout"])["compute_seconds"])
                tool_compute = min(tool_compute, json.loads(
                    t["stderr"].strip().splitlines()[-1])["compute_seconds"])
        flop = (base["fb_rows"] * workload.gradient_row_flops(sizes)
                + base["f_rows"] * workload.forward_row_flops(sizes))
        record = {
            "probe": probe, "baseline_seconds": base_s, "toolkit_seconds": tool_s,
            "ratio": tool_s / base_s, "baseline_cpu_seconds": base_cpu,
            "toolkit_cpu_seconds": tool_cpu, "cpu_ratio": tool_cpu / base_cpu,
            "baseline_peak_rss_bytes": base_rss,
            "toolkit_peak_rss_bytes": tool_rss, "baseline_compute_seconds": base_compute,
            "toolkit_compute_seconds": tool_compute, "compute_ratio": tool_compute / base_compute,
            "fb_rows": base["fb_rows"], "f_rows": base["f_rows"],
            "gflop": flop / 1e9, "max_rel_diff": compare(probe, base, tool),
            "baseline_median_gap": base.get("median_gap"),
            "toolkit_median_gap": tool.get("completeness", {}).get("median_gap"),
            "toolkit_command": ["probe", *toolkit_args(probe, "M", "D", sizes)],
            "toolkit_path": path(tool),
        }
        records.append(record)
        report(f"  {probe}: baseline {base_s:.2f}s, toolkit {tool_s:.2f}s, "
               f"ratio {record['ratio']:.2f} (CPU {record['cpu_ratio']:.2f}); compute "
               f"{base_compute:.2f}s vs {tool_compute:.2f}s, ratio {record['compute_ratio']:.2f}; "
               f"{record['toolkit_path']} path")
    return records
