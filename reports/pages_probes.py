"""Pages 3-4: accuracy against the references (a run) or the labels' loss changes (a user's
model with labels), and every probe's matrix with intervals. Matplotlib only."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports import layout
from reports.layout import MAIN, POINTS, fit_size, matrix_box, new_page
from reports.plots import plot_shares

LOSS_PROBES = ("ablation/shuffle", "ablation/zero")


def page_accuracy(subjects) -> Figure:
    runs = [s for s in subjects if s.run]
    if runs:
        return _page_references(runs)
    return _page_losses(subjects)


def _page_references(runs) -> Figure:
    fig = new_page("Held-out accuracy per head against the best possible from each source")
    for k, s in enumerate(runs):
        ax = fig.add_axes([0.06 + k * 0.93 / len(runs), 0.22, 0.8 / len(runs), 0.62])
        heads = s.run["accuracy"]["heads"]
        # The generator's own reference sources, in its order (neither, each input, both).
        sources = list(next(iter(heads.values()))["reference"])
        x = np.arange(len(heads))
        bars = len(sources) + 1
        width = 0.8 / bars
        grey = min(0.17, 0.68 / max(len(sources) - 1, 1))
        for j, src in enumerate(sources):
            ax.bar(x + (j - (bars - 1) / 2) * width, [heads[h]["reference"][src] for h in heads],
                   width, label=f"reference: {src}", color=f"{0.85 - grey * j:.2f}")
        acc = [heads[h]["accuracy"] for h in heads]
        right = x + (bars - 1) / 2 * width
        ax.bar(right, acc, width, label="model", color="#d62728")
        for xi, a in zip(right, acc):
            ax.text(xi, a + 0.01, f"{a:.3f}", ha="center", fontsize=9)
        layout.tick_labels(ax, "x", [f"{h}\n{heads[h]['task']}" for h in heads],
                    0.8 / len(runs) * POINTS[0], base=10)
        ax.set_ylim(0.4, 1.08)
        ax.set_title(f"{s.label} ({s.run['accuracy']['samples']} held-out pairs)", fontsize=11)
        if k == 0:
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=8, loc="lower left")
    fig.text(0.04, 0.08, "References are Bayes-optimal accuracies from the generator's known "
             "author chains, on the very samples the model is scored on.", fontsize=9.5)
    return fig


def _page_losses(subjects) -> Figure:
    fig = new_page("What the labels show: how much each head's loss grows when an input is "
                   "ablated")
    labelled = [s for s in subjects if s.has_labels]
    lines = [f"{s.label}: no labels in the data (no arrays named like the heads "
             f"{', '.join(s.heads)}), so there is no accuracy or loss to show; the other pages "
             "measure how far the outputs move." for s in subjects if not s.has_labels]
    panels = [(s, p) for s in labelled for p in LOSS_PROBES if p in s.results]
    top, bottom = 0.86, 0.30 if panels else 0.86
    for k, (s, probe) in enumerate(panels):
        w = 0.9 / len(panels)
        _loss_matrix(fig, [0.06 + k * w, bottom, w - 0.06, top - bottom], s, probe)
    if panels:
        lines.insert(0, "Each cell: the mean change of the head's loss (binary cross-entropy for "
                     "outputs in [0, 1], squared error otherwise) when the input is ablated, "
                     "over the samples, with a normal 95% interval (mean +- 1.96 sd / sqrt(n)). "
                     "Red: the loss grows without the input, so the head uses it to predict "
                     "its labels; near 0: it does not; blue: the head does better without it.")
    layout.paragraph(fig, "\n".join(lines), bottom - 0.05 if panels else 0.85, width=150, size=9.5,
              bottom=0.02)
    return fig


def _loss_matrix(fig, slot, s, probe):
    loss = s.results[probe][0].loss_effects  # (H, I, N)
    mean = loss.mean(axis=2)
    half = 1.96 * loss.std(axis=2, ddof=1) / np.sqrt(loss.shape[2])
    scale = max(np.abs(mean).max(), 1e-12)
    n_heads, n_inputs = mean.shape
    box, cell_w, cell_h = matrix_box(slot, n_heads, n_inputs)
    ax = fig.add_axes(box)
    ax.imshow(mean, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto")
    layout.tick_labels(ax, "x", s.inputs, cell_w * n_inputs, base=10)
    layout.tick_labels(ax, "y", s.heads, cell_h * n_heads, base=10)
    size = fit_size(9, chars=20, width_pt=cell_w, lines=3, height_pt=cell_h)
    for h in range(n_heads):
        for i in range(n_inputs):
            ax.text(i, h, f"{mean[h, i]:+.3g}\n[{mean[h, i] - half[h, i]:+.2g}, "
                    f"{mean[h, i] + half[h, i]:+.2g}]", ha="center", va="center",
                    fontsize=size,
                    color="white" if abs(mean[h, i]) > 0.6 * scale else "black")
    ax.set_title(f"{s.label}: change of the loss, {probe}", fontsize=11)


def page_matrices(subjects) -> Figure:
    levels = sorted({round(100 * summary.settings["confidence"]) for s in subjects
                     for _, summary in s.results.values()})
    fig = new_page("Every probe's matrix: share of each head's dependence, "
                   f"{' / '.join(map(str, levels)) or 95}% intervals")
    n = len(subjects)
    notes = []
    for k, s in enumerate(subjects):
        ax = fig.add_axes([0.07, 0.10 + (n - 1 - k) * 0.84 / n, 0.55, 0.84 / n - 0.12])
        plot_shares({name: res for name, (res, _) in s.results.items()}, ax=ax, title=s.label)
        cells = [(h, i) for h in range(len(s.heads)) for i in range(len(s.inputs))]
        names = list(s.results)
        base = s.results[MAIN][1].verdict
        for name in names:
            v = s.results[name][1].verdict
            for h, i in cells:
                if v[h, i] != base[h, i]:
                    notes.append(f"{s.label}: {s.heads[h]} <- {s.inputs[i]}: {name} says "
                                 f"{v[h, i]}, {MAIN} says {base[h, i]}")
    text = ("Disagreements between probes' verdicts:\n" + "\n".join(notes) if notes else
            "Every probe gives the same verdict in every cell of every model.")
    skipped = [f"{s.label}: {name} was not run: {why}" for s in subjects
               for name, why in s.skipped.items() if "/" in name]
    if skipped:
        text += "\n" + "\n".join(skipped)
    layout.paragraph(fig, text, 0.86, width=34, size=8.5, x=0.80, bottom=0.02)
    return fig
