"""Pages 5-6: profiles along each input, and the shared weights (task gradients, coupling,
affinity). Matplotlib only; every panel iterates over the model's own heads and inputs."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from reports.layout import (
    POINTS,
    fit_size,
    grid,
    matrix_box,
    new_page,
    paragraph,
    plural,
    tick_labels,
)

PROFILED = ("ablation/occlusion", "attribution/integrated_gradients")
STYLES = {"ablation/occlusion": "-", "attribution/integrated_gradients": "--"}


def head_color(h: int, n: int):
    """One colour per head, the same on every panel."""
    return f"C{h}" if n <= 10 else matplotlib.colormaps["tab20"](h % 20)


def page_profiles(subjects) -> Figure:
    fig = new_page("Over time: where along the sequence each head finds each input")
    panels = [(s, i) for s in subjects for i in range(len(s.inputs))]
    per_row = max(len(s.inputs) for s in subjects)
    rows, cols = grid(len(panels), per_row if per_row <= 3 else int(np.ceil(len(panels) ** 0.5)))
    w, h = 0.94 / cols, 0.83 / rows
    small = fit_size(8, height_pt=h * POINTS[1] / 12)
    for k, (s, i) in enumerate(panels):
        r, c = divmod(k, cols)
        ax = fig.add_axes([0.07 + c * w, 0.10 + (rows - 1 - r) * h, w - 0.07, h - 0.12])
        drawn = []
        for name in PROFILED:
            res = s.results[name][0] if name in s.results else None
            if res is None or res.profile is None:
                continue
            drawn.append(name)
            peak = np.abs(res.profile[:, i].mean(axis=1)).max()
            for hd in range(len(s.heads)):
                curve = res.profile[hd, i].mean(axis=0)  # (W,) mean over samples
                ax.plot(res.profile_starts, curve / peak if peak > 0 else curve, STYLES[name],
                        color=head_color(hd, len(s.heads)), lw=1.3)
        if not drawn:
            why = "; ".join(f"{p}: {s.skipped[p]}" for p in PROFILED if p in s.skipped)
            ax.text(0.5, 0.5, "no profile" + (f" ({why})" if why else ""), ha="center",
                    va="center", transform=ax.transAxes, fontsize=small, wrap=True)
        ax.set_title(f"{s.label}: {s.inputs[i]}", fontsize=10)
        ax.tick_params(labelsize=small + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if r == rows - 1 or k + cols >= len(panels):
            label = (("time step" if s.run else "step along axis 1")
                     + " (window start for occlusion)")
            ax.set_xlabel(label, fontsize=fit_size(small, chars=len(label),
                                                    width_pt=(w - 0.07) * POINTS[0]))
        if c == 0:
            ax.set_ylabel("effect / max over heads", fontsize=small)
    _profile_legend(fig, subjects)
    runs = [s for s in subjects if s.run]
    if runs:
        steps = sorted({s.run["manifest"]["arguments"]["seq_len"] for s in runs})
        note = ("Tweets are pre-padded: the characters sit at the end of the "
                f"{' or '.join(map(str, steps))} steps. ")
    else:
        note = ("Each curve is the mean over samples, divided by the largest of that input's "
                "curves. ")
    fig.text(0.04, 0.02, note + "A head with no path to an input has a flat zero curve.",
             fontsize=9)
    return fig


def _profile_legend(fig, subjects) -> None:
    heads = max((s.heads for s in subjects), key=len)
    handles = [Line2D([], [], color=head_color(h, len(heads)), lw=1.5, label=head)
               for h, head in enumerate(heads)]
    handles += [Line2D([], [], color="0.2", ls=STYLES[p], lw=1.3, label=p.split("/")[1])
                for p in PROFILED]
    chars = sum(len(x.get_label()) + 6 for x in handles)
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.04, 0.93), frameon=False,
               ncol=len(handles), fontsize=fit_size(8, chars=chars, width_pt=0.9 * POINTS[0]),
               handlelength=2.2)


def _pairs(n):
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def page_shared(subjects) -> Figure:
    fig = new_page("The shared weights: task gradients, coupling and task affinity")
    subs = [s for s in subjects if s.run and s.run.get("taskgrads")]
    lines = []
    if subs:
        _training_panels(fig, subs)
    else:
        lines.append("No training record: " + ", ".join(s.label for s in subjects)
                     + (" was" if len(subjects) == 1 else " were") + " not trained by `probe "
                     "train` here, so there are no task gradients or task affinity over "
                     "training.")
    for s in subjects:
        if len(s.heads) == 1:
            lines.append(f"{s.label}: one head ({s.heads[0]}), so no weights are shared "
                         "between heads and there is no coupling to measure.")
        elif not s.shared:
            why = next((s.skipped[p] for p in ("shared/agreement", "shared/coupling")
                        if p in s.skipped), "no result saved")
            lines.append(f"{s.label}: nothing to show on shared weights: {why}.")
    coupled = [s for s in subjects if s.shared and len(s.heads) > 1]
    top = 0.42 if subs else 0.84  # below the training panels, or the whole page
    if coupled:
        _coupling_panel(fig, coupled, lines, top, len(subjects) > 1)
    text = "\n".join(lines)
    if coupled:
        control = max(np.array(s.shared["coupling"]["moved_control"])[
            ~np.eye(len(s.heads), dtype=bool)].max() for s in coupled)
        others = "head" if all(len(s.heads) == 2 for s in coupled) else "heads"
        text += (f"\nThe own-weights control moves the other {others} by exactly 0.0: all "
                 "coupling goes through the shared layers." if control == 0 else
                 f"\nThe own-weights control moves the other {others} by up to {control:.1e}.")
    if coupled:
        paragraph(fig, text, top, width=60, size=9, x=0.53, bottom=0.02)
    else:
        paragraph(fig, text, 0.88 if not subs else 0.42, width=150, size=10, bottom=0.02)
    return fig


def _training_panels(fig, subs) -> None:
    ax = fig.add_axes([0.06, 0.56, 0.40, 0.33])
    ax2 = fig.add_axes([0.55, 0.56, 0.40, 0.33])
    for s in subs:
        tg = s.run["taskgrads"]
        steps = [r["step"] for r in tg["records"]]
        g = len(tg["groups"]) - 1
        heads = tg["heads"]
        for a, b in _pairs(len(heads)):
            ax.plot(steps, [r["cosine"][g][a][b] for r in tg["records"]], lw=1.2,
                    label=s.label if len(heads) == 2 else f"{s.label}: {heads[a]}/{heads[b]}")
        for a in range(len(heads)):
            for b in range(len(heads)):
                if a != b:
                    ax2.plot(steps, [r["affinity"][a][b] for r in tg["records"]], lw=1.2,
                             label=f"{s.label}: step on {heads[a]} -> {heads[b]}")
    names = {tuple(s.run["taskgrads"]["heads"]) for s in subs}
    only = next(iter(names))
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_title(f"cosine of {only[0]}'s and {only[1]}'s loss gradients on the shared weights"
                 if len(names) == 1 and len(only) == 2 else
                 "cosine of each pair of heads' loss gradients on the shared weights",
                 fontsize=10)
    ax.set_xlabel("training step", fontsize=9)
    ax.legend(fontsize=8 if len(ax.lines) <= 5 else 6)
    ax2.axhline(0, color="0.5", lw=0.8)
    ax2.set_title("lookahead task affinity 1 - L_j(after step on i) / L_j", fontsize=10)
    ax2.set_xlabel("training step", fontsize=9)
    ax2.legend(fontsize=7 if len(ax2.lines) <= 7 else 5, ncol=1 if len(ax2.lines) <= 7 else 2)


def _coupling_panel(fig, coupled, lines, top: float, named: bool) -> None:
    for s in coupled:
        lines.append(_coupling_text(s, s.shared["agreement"].get("heads", s.heads)))
    if all(len(s.heads) == 2 for s in coupled):
        _coupling_bars(fig.add_axes([0.06, 0.10, 0.40, top - 0.10]), coupled, named)
        return
    n = len(coupled)  # more heads: one matrix per model, step on a row's task -> column head
    for k, s in enumerate(coupled):
        longest = max(len(f"step {h}") for h in s.heads)
        left = min(0.18, 0.6 * 9 * longest / POINTS[0] + 0.01)  # room for the row labels
        slot = [0.04 + left, 0.10 + (n - 1 - k) * (top - 0.10) / n, 0.42 - left,
                (top - 0.10) / n - 0.10]
        _coupling_matrix(fig, slot, s)


def _coupling_bars(ax, coupled, named: bool) -> None:
    labels, width = [], 0.35
    values, controls = [], []
    for s in coupled:
        c = s.shared["coupling"]
        heads = s.shared["agreement"].get("heads", s.heads)
        for j, head in enumerate(heads):
            for i, other in enumerate(heads):
                if i != j:
                    labels.append(f"{s.label}\n" * named + f"step {head}\n-> {other}")
                    values.append(c["moved"][j][i])
                    controls.append(c["moved_control"][j][i])
    x = np.arange(len(labels))
    ax.bar(x - width / 2, values, width, label="step on all the task's weights")
    ax.bar(x + width / 2, controls, width, label="step on the head's own weights only")
    tick_labels(ax, "x", labels, 0.40 * POINTS[0], base=8)
    ax.set_title("coupling: mean |change| of the other head's output after one step",
                 fontsize=10)
    ax.legend(fontsize=8)


def _coupling_matrix(fig, slot, s) -> None:
    heads = s.shared["agreement"].get("heads", s.heads)
    moved = np.array(s.shared["coupling"]["moved"], float)
    shown = np.where(np.eye(len(heads), dtype=bool), np.nan, moved)
    box, cell_w, cell_h = matrix_box(slot, len(heads), len(heads))
    ax = fig.add_axes(box)
    ax.imshow(shown, cmap="Oranges", vmin=0, aspect="auto")
    tick_labels(ax, "x", heads, cell_w * len(heads), base=9)
    tick_labels(ax, "y", [f"step {h}" for h in heads], cell_h * len(heads), base=9)
    size = fit_size(9, chars=9, width_pt=cell_w, height_pt=cell_h)
    top = np.nanmax(shown) if np.isfinite(shown).any() else 0.0
    for j in range(len(heads)):
        for i in range(len(heads)):
            if i != j:
                ax.text(i, j, f"{moved[j, i]:.2e}", ha="center", va="center", fontsize=size,
                        color="white" if moved[j, i] > 0.6 * top else "black")
    ax.set_title(f"{s.label}: coupling, mean |change| of each column's\nhead's output after "
                 "one step on the row's task", fontsize=10)


# Up to this many ordered pairs of heads, the text lists each predicted and measured change.
LISTED = 6


def _coupling_text(s, heads) -> str:
    c = s.shared["coupling"]
    a = s.shared["agreement"]
    conflict = np.array(a["conflict_rate"])[-1]
    cos = np.array(a["cosine_full"])[-1]
    pairs = _pairs(len(heads))
    tg = s.run.get("taskgrads") if s.run else None
    over = ""
    if tg and tg["records"]:
        cs = np.array([[r["cosine"][-1][p][q] for p, q in pairs] for r in tg["records"]])
        over = (f"; over training, conflict rate {np.mean(cs < 0):.2f} of "
                f"{len(tg['records'])} records" + ("" if len(pairs) == 1 else " (all pairs)"))
    batches = plural(a["params"]["batches"], "mini-batch", "mini-batches")
    if len(pairs) == 1:
        agreement = (f"cosine {cos[0, 1]:+.3f} over {s.shared['samples']} samples, conflict "
                     f"rate {conflict[0, 1]:.2f} over {batches}")
    else:
        agreement = (f"cosine (conflict rate over {batches}) over {s.shared['samples']} "
                     "samples " + ", ".join(f"{heads[p]}/{heads[q]} {cos[p, q]:+.3f} "
                                            f"({conflict[p, q]:.2f})" for p, q in pairs))
    steps = [(j, i) for j in range(len(heads)) for i in range(len(heads)) if i != j]
    predicted, measured = np.array(c["predicted"], float), np.array(c["loss_change"], float)
    if len(steps) > LISTED:
        j, i = max(steps, key=lambda t: abs(predicted[t] - measured[t]))
        return (f"{s.label}: at the final weights, {agreement}{over}. Predicted vs measured "
                "loss change of each other task after one step, the largest gap of the "
                f"{len(steps)} ordered pairs: {heads[j]} -> {heads[i]} {predicted[j, i]:.2e} "
                f"vs {measured[j, i]:.2e}")
    return (f"{s.label}: at the final weights, {agreement}{over}. Predicted vs measured loss "
            "change of the other task after one step: " + ", ".join(
                ("" if len(pairs) == 1 else f"{heads[j]} -> {heads[i]} ")
                + f"{predicted[j, i]:.2e} vs {measured[j, i]:.2e}"
                for j, i in steps))
