"""Figures of saved results, each drawn on a given matplotlib axis (or a new one): the report's
pages are built from these, and a notebook calls the same ones. Importing this module changes no
global matplotlib state, and nothing here imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from reports.layout import fit_size, fits, tick_labels


def _axis(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 4))
    return ax


def plot_shares(results, ax=None, *, title: str | None = None):
    """Each input's share of each head's dependence, with its 95% interval: one point per
    (head, input) cell and probe.

    Args:
        results: a ProbeResult, or {label: ProbeResult} of one model (same heads and inputs).
        ax: the axis to draw on [default: a new figure's].
    Returns:
        The axis.
    """
    ax = _axis(ax)
    if not isinstance(results, dict):
        results = {f"{results.probe}/{results.method}": results}
    first = next(iter(results.values()))
    heads, inputs = first.heads, first.inputs
    cells = [(h, i) for h in range(len(heads)) for i in range(len(inputs))]
    span = ax.get_position().width * ax.figure.get_size_inches()[0] * 72  # points
    ms = min(4.0, 0.6 * span / (len(cells) * len(results)))  # points that do not touch
    for j, (name, res) in enumerate(results.items()):
        summ = res.summary()
        xs = np.arange(len(cells)) + (j - len(results) / 2) * 0.8 / len(results)
        y = [summ.share[h, i] for h, i in cells]
        lo = [summ.share[h, i] - summ.share_ci_low[h, i] for h, i in cells]
        hi = [summ.share_ci_high[h, i] - summ.share[h, i] for h, i in cells]
        ax.errorbar(xs, y, yerr=[lo, hi], fmt="o", ms=ms, capsize=2, label=name)
    below = _cell_labels(ax, heads, inputs, cells, span)
    height = ax.figure.get_size_inches()[1] * 72
    short = (below + 4) / height - 0.09  # labels deeper than the gap under the axes
    if short > 0:
        x0, y0, w, h = ax.get_position().bounds
        ax.set_position([x0, y0 + short, w, h - short])
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share", fontsize=9)
    ax.set_title(title or first.model, fontsize=11)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title=None)
    return ax


def _cell_labels(ax, heads, inputs, cells, span) -> float:
    """'head <- input' under each cell, or, when those would not stand side by side, the
    input under each cell and the head once under its group of cells. Returns how far the
    labels reach below the axis (points)."""
    labels = [f"{heads[h]} <- {inputs[i]}" for h, i in cells]
    if fits(labels, span, 7):
        return tick_labels(ax, "x", labels, span)
    below = tick_labels(ax, "x", [inputs[i] for _, i in cells], span, base=8)
    n = len(inputs)
    size = fit_size(9, chars=max(len(h) for h in heads) + 2, width_pt=span / len(heads))
    for h, head in enumerate(heads):
        if h:
            ax.axvline(h * n - 0.5, color="0.8", lw=0.8)
        ax.annotate(head, ((h * n + (n - 1) / 2), 0), xycoords=("data", "axes fraction"),
                    xytext=(0, -below - 2), textcoords="offset points", ha="center", va="top",
                    fontsize=size, fontweight="bold")
    return below + 2 + 1.2 * size
