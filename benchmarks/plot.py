"""The scaling figure: probe time against samples, sequence length, heads and inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

LABELS = {"samples": "samples", "seq_len": "sequence length (steps)",
          "heads": "heads", "inputs": "inputs"}


def scaling_figure(points: list[dict], fits: list[dict], path) -> Path:
    """Four panels (one per axis), one line per probe of CPU seconds with its quadratic fit
    dashed and wall seconds as crosses; written atomically to `path` (.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from probes.results import atomic

    axes_names = list(LABELS)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), constrained_layout=True)
    for ax, axis in zip(axes, axes_names):
        for probe, color in (("ablation/shuffle", "tab:blue"),
                             ("attribution/integrated_gradients", "tab:orange")):
            mine = sorted((p["x"], p["cpu_seconds"], p["seconds"]) for p in points
                          if p["axis"] == axis and p["probe"] == probe)
            if not mine:
                continue
            x, t, wall = np.array(mine).T
            fit = next((f for f in fits if f["axis"] == axis and f["probe"] == probe), None)
            label = probe.split("/")[1]
            if fit:
                label += f": {fit['growth']} (x\u00b2 term {100 * fit['quadratic_share']:+.0f}%)"
                grid = np.linspace(0, x.max(), 50)
                ax.plot(grid, fit["a"] + fit["b"] * grid + fit["c"] * grid ** 2, "--",
                        color=color, lw=1)
            ax.plot(x, t, "o-", color=color, label=label)
            ax.plot(x, wall, "x", color=color, alpha=0.5)
        ax.set_xlabel(LABELS[axis])
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("CPU seconds (in-process, warm)")
    fig.suptitle("Probe time as work grows: CPU seconds (o, dashed: least-squares a + bx + "
                 "cx\u00b2) and wall seconds (x)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic.write_bytes(path, buf.getvalue())
