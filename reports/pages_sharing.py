"""The sharing page: learning curves of the tied, untied and single-task arms per head, the
gradient cosine during tied training, and the sentences generated from the numbers. Reads a
saved probes.results.transfer.SharingResult only. Matplotlib only."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from probes.results.transfer import ARMS
from reports.layout import new_page, paragraph

ARM_STYLE = {"tied": ("C0", "o", "tied, both tasks"),
             "untied": ("C1", "s", "untied (one LSTM per tweet), both tasks"),
             "single": ("C2", "^", "tied, this task alone")}


def page_sharing(result) -> Figure:
    fig = new_page(f"What sharing the encoder is worth: {result.variant} tied vs untied vs "
                   "single task")
    n_heads = len(result.heads)
    width = 0.60 / n_heads
    sizes = np.asarray(result.sizes, float)
    for h, head in enumerate(result.heads):
        ax = fig.add_axes([0.06 + h * (width + 0.02), 0.42, width - 0.02, 0.44])
        for k, arm in enumerate(ARMS):
            color, marker, label = ARM_STYLE[arm]
            cis = [result.interval(head, arm, s) for s in result.sizes]
            mean = np.array([c.mean for c in cis])
            low = np.array([c.low for c in cis])
            high = np.array([c.high for c in cis])
            x = sizes * (1 + 0.03 * (k - 1))  # a small offset keeps the bars apart
            ax.plot(x, mean, marker=marker, color=color, lw=1.4, label=label)
            if np.all(np.isfinite(low)):
                ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color,
                            capsize=3, lw=1)
        own = result.own_source(head)
        for source, style in ((own, "--"), ("neither", ":")):
            ref = [result.reference_mean(head, source, s) for s in result.sizes]
            ax.plot(sizes, ref, style, color="0.35", lw=1,
                    label=f"Bayes-optimal from {source}")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in result.sizes])
        ax.minorticks_off()
        ax.set_title(f"{head}: {result.task(head)}", fontsize=11)
        ax.set_xlabel("training pairs", fontsize=9)
        if h == 0:
            ax.set_ylabel("held-out accuracy (mean, 95% t interval over seeds)", fontsize=9)
        ax.tick_params(labelsize=8)
        if h == n_heads - 1:
            ax.legend(fontsize=7, loc="lower right")
    _cosine_panel(fig.add_axes([0.72, 0.42, 0.25, 0.44]), result)
    text = " ".join(result.sentences())
    paragraph(fig, text, y=0.31, width=150, size=9.5, bottom=0.05)
    fig.text(0.04, 0.02, f"{len(result.seeds)} seeds per arm and size; within a size and seed "
             "every arm has the same world, training pairs, held-out pairs and initial weights "
             "of the common layers, so transfers are paired differences.", fontsize=8)
    return fig


def _cosine_panel(ax, result):
    drawn = False
    for s, size in enumerate(result.sizes):
        curves = [np.asarray(c, float) for c in result.cosine[s] if len(c)]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        steps = curves[0][:n, 0]
        mean = np.mean([c[:n, 1] for c in curves], axis=0)
        ax.plot(steps, mean, lw=1.3, label=f"{size} pairs")
        drawn = True
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_title("tasks' gradients on the shared LSTM (tied)", fontsize=10)
    ax.set_xlabel("training step", fontsize=9)
    ax.set_ylabel("cosine (mean over seeds)", fontsize=9)
    ax.tick_params(labelsize=8)
    if drawn:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no gradient record\n(trained without a monitor)", ha="center",
                va="center", transform=ax.transAxes, fontsize=9)
