"""Can the attributions be believed? The faithfulness page (deletion and insertion curves of
every method) and the sanity page (cascading randomisation). Matplotlib only; reads the saved
probes.checks.faithfulness.Faithfulness and probes.checks.sanity.Sanity results."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.layout import new_page, paragraph

STYLE = {"random": dict(color="0.3", ls=":", lw=1.6), "input": dict(color="0.3", ls=":", lw=1.6)}


def _missing(fig, subjects, key, what):
    lines = [f"{s.label}: {s.skipped.get(key, 'not computed')}" for s in subjects
             if s.trust.get(key) is None]
    if lines:
        fig.text(0.04, 0.06, f"No {what} for " + "; ".join(lines), fontsize=9)


def page_faithfulness(subjects) -> Figure:
    fig = new_page("Do the attributions rank what the heads use? Deletion and insertion")
    shown = [s for s in subjects if s.trust.get("faithfulness") is not None]
    rows = max(len(shown), 1)
    h = 0.71 / rows
    for r, s in enumerate(shown):
        res = s.trust["faithfulness"]
        ok = res.measurable()
        for c, kind in enumerate(("deletion", "insertion")):
            ax = fig.add_axes([0.07 + c * 0.30, 0.18 + (rows - 1 - r) * h, 0.25, h - 0.08])
            curves = res.normalised(kind)  # (M, H, I, N, F)
            areas = res.areas(kind)
            for m, method in enumerate(res.methods):
                cells = curves[m][ok]  # (cells, N, F)
                if not cells.size:
                    continue
                # Medians over cells and samples: robust to samples whose small span blows
                # their normalised curve up.
                median = np.nanmedian(cells.reshape(-1, cells.shape[-1]), axis=0)
                area = np.nanmedian(areas[m][ok])
                ax.plot(res.fractions, median, label=f"{method} ({area:.2f})",
                        **STYLE.get(method, dict(lw=1.3)))
            ax.set_title(f"{s.label}: {kind}", fontsize=10)
            ax.set_xlabel(f"fraction of steps {'removed' if kind == 'deletion' else 'restored'}"
                          " (ranked first)", fontsize=8)
            ax.set_ylabel("normalised head score (median)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, title="method (area)", title_fontsize=6)
        cells = [f"{res.heads[a]} <- {res.inputs[b]}" for a, b in zip(*np.nonzero(ok))]
        fig.text(0.68, 0.18 + (rows - 1 - r) * h + h - 0.1,
                 f"{s.label}: median over {len(cells)} cell(s)\n" + "\n".join(cells)
                 + f"\n{len(res.sample_ids)} samples", fontsize=8, va="top")
    if not shown:
        fig.text(0.04, 0.8, "No faithfulness result was saved for these models.", fontsize=11)
    paragraph(fig, "Each method ranks an input's time steps by its signed attribution of the "
              "head's logit (towards the head's decision); deletion removes the steps in that "
              "order, most important first, as `probe ablate --mode zero` removes them, and "
              "insertion restores them into the input removed entirely. Scores are normalised "
              "per sample (1 at the sample, 0 with the input removed) and averaged over the "
              "cells where a head has a path from the input and removing it moves the score. "
              "A faithful ranking falls fast under deletion (small area) and rises fast under "
              "insertion (large area); the random order is the floor. Curves and areas are medians over samples (a sample whose score barely moves with the input removed has a large normalised swing).", y=0.10, width=170,
              size=8.5, bottom=0.01)
    _missing(fig, subjects, "faithfulness", "faithfulness result")
    return fig


def page_sanity(subjects) -> Figure:
    fig = new_page("Do the attributions explain the model? Cascading randomisation")
    shown = [s for s in subjects if s.trust.get("sanity") is not None]
    cols = max(len(shown), 1)
    w = 0.86 / cols
    verdicts = []
    for c, s in enumerate(shown):
        res = s.trust["sanity"]
        ax = fig.add_axes([0.07 + c * w, 0.36, w - 0.07, 0.50])
        steps = np.arange(len(res.layers) + 1)
        reach = res.structural
        for m, method in enumerate(res.methods):
            with np.errstate(invalid="ignore"):
                per_step = [np.nanmean(np.abs(res.correlation[m, k][reach])) for k in
                            range(len(res.layers))]
            ax.plot(steps, [1.0] + per_step, marker="o", ms=3, label=method,
                    **STYLE.get(method, dict(lw=1.3)))
            failed = [f"{h} <- {i}" for h in res.heads for i in res.inputs
                      if res.verdict(method, h, i) == "fails"]
            if failed:
                verdicts.append(f"{s.label}: {method} fails ({', '.join(failed)})")
        ax.axhline(res.params["threshold"], color="0.6", lw=0.8, ls="--")
        ax.set_xticks(steps, ["trained"] + [f"+{name}" for name in res.layers], rotation=30,
                      ha="right", fontsize=7)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(s.label, fontsize=10)
        ax.set_ylabel("|Spearman's rho| with the trained model's maps", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7)
    if not shown:
        fig.text(0.04, 0.8, "No sanity result was saved for these models.", fontsize=11)
    threshold = " / ".join(sorted({str(s.trust["sanity"].params["threshold"]) for s in shown}))
    text = ("Layers with weights are re-initialised from the heads down, one more at each step "
            "(normal draws with each tensor's own mean and std, on a copy of the model), and "
            "every method's maps are recomputed. A method whose maps keep their ranking when "
            "the weights they explain are destroyed fails: the upper end of the 95% interval "
            f"of the mean |rho| after the last step must be below {threshold} (a map that only "
            "flips its sign has not changed). The control `input` "
            "ignores the model (each step's features through a fixed random projection) and "
            "must fail. Mean over the cells with a path and the samples. ")
    text += ("Verdicts: " + "; ".join(verdicts) + ".") if verdicts else "No method fails."
    paragraph(fig, text, y=0.20, width=170, size=8.5, bottom=0.02)
    _missing(fig, subjects, "sanity", "sanity result")
    return fig
