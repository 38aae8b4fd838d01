"""Pages 1-4: the answer, the models, accuracy, every probe's matrix. Matplotlib only."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

PAGE = (11.69, 8.27)  # A4 landscape, inches
MAIN = "ablation/shuffle"


def new_page(title: str) -> Figure:
    fig = Figure(figsize=PAGE)
    fig.suptitle(title, fontsize=15, fontweight="bold", x=0.04, ha="left", y=0.97)
    return fig


def paragraph(fig: Figure, text: str, y: float, width: int = 150, size: float = 10.5,
              x: float = 0.04) -> None:
    fig.text(x, y, "\n".join(textwrap.fill(p, width) for p in text.split("\n")),
             fontsize=size, va="top", ha="left", family="DejaVu Sans")


def answer_text(subjects) -> str:
    """The first page's paragraph, generated from the measured numbers."""
    lines = []
    for s in subjects:
        res, summ = s.results[MAIN]
        outs = len(s.heads)
        tasks = ""
        if s.run:
            tasks = " (" + ", ".join(f"{h}: {s.run['accuracy']['heads'][h]['task']}"
                                     for h in s.heads) + ")"
        kind = "multi-task" if outs > 1 else "single-task"
        cells = []
        for h, head in enumerate(s.heads):
            uses = [f"{inp} (share {summ.share[h, i]:.2f}, {summ.verdict[h, i]})"
                    for i, inp in enumerate(s.inputs)]
            cells.append(f"{head} <- " + ", ".join(uses))
        lines.append(f"{s.name}: {outs} outputs{tasks}, so it is {kind}. Ablation by "
                     f"shuffling one input at a time on {res.samples} "
                     f"{'held-out ' if s.run else ''}samples: "
                     + "; ".join(cells) + ".")
        zeros = [f"{head} <- {inp}" for h, head in enumerate(s.heads)
                 for i, inp in enumerate(s.inputs) if summ.verdict[h, i] == "structural_zero"]
        if zeros:
            lines.append(f"   In {s.name} no path links {', '.join(zeros)}: those effects are "
                         "exactly 0.0 in every probe.")
        if s.shared:
            c = s.shared["coupling"]
            moved = np.array(c["moved"])
            control = np.array(c["moved_control"])
            off = ~np.eye(len(s.heads), dtype=bool)
            layers = ", ".join(s.shared["agreement"]["groups"])
            cos = np.array(s.shared["agreement"]["cosine_full"])[-1]
            lines.append(f"   Shared weights in {s.name}: {layers}. One gradient step on one "
                         f"task moves the other head by {moved[off].mean():.2e} on average "
                         f"(a step on the head's own weights: {control[off].max():.1f}); the "
                         f"tasks' gradient cosine on them is {cos[0, 1]:+.2f}.")
        if s.paths and s.paths.get("interaction"):
            inter = s.paths["interaction"]
            rel = np.array(inter["relative"])[:, 0]
            verdicts = [v[0] for v in inter["verdict"]]
            lines.append(f"   Interaction of {' and '.join(inter['input_pairs'][0])} in each "
                         "head's logit: " + ", ".join(
                             f"{t} {r:.1e} ({v})" for t, r, v in
                             zip(inter["targets"], rel, verdicts)) + ".")
    both = [s for s in subjects if (s.results[MAIN][1].verdict == "depends").sum() > len(s.heads)]
    if both and len(subjects) > 1:
        lines.append("Only " + ", ".join(s.name for s in both) + " lets a head use information "
                     "from more than one input; elsewhere a head reads only its own input and "
                     "the tasks are linked only through the shared weights.")
    return "\n".join(lines)


def _matrix(ax, s, probe=MAIN):
    summ = s.results[probe][1]
    share = np.asarray(summ.share, float)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(s.inputs)), s.inputs, fontsize=10)
    ax.set_yticks(range(len(s.heads)), s.heads, fontsize=10)
    for h in range(len(s.heads)):
        for i in range(len(s.inputs)):
            ax.text(i, h, f"{summ.verdict[h, i]}\neffect {summ.effect[h, i]:.3g}\n"
                    f"share {share[h, i]:.2f}", ha="center", va="center", fontsize=9,
                    color="white" if share[h, i] > 0.6 else "black")
    ax.set_title(f"{s.name}: share of each head's dependence", fontsize=11)


def page_answer(subjects) -> Figure:
    fig = new_page("Which heads use which inputs: the answer")
    n = len(subjects)
    for k, s in enumerate(subjects):
        ax = fig.add_axes([0.05 + k * 0.9 / n, 0.50, 0.8 / n, 0.38])
        _matrix(ax, s)
    paragraph(fig, answer_text(subjects), 0.42, width=150, size=9)
    return fig


def _layout(edges, inputs):
    """Node -> (x, y): depth from the inputs, spread vertically."""
    preds: dict[str, set] = {}
    for a, b in edges:
        preds.setdefault(b, set()).add(a)
        preds.setdefault(a, set())
    depth = {}

    def d(node):
        if node not in depth:
            depth[node] = 0 if not preds[node] else 1 + max(d(p) for p in preds[node])
        return depth[node]

    for node in preds:
        d(node)
    cols: dict[int, list] = {}
    for node in sorted(preds, key=lambda x: (depth[x], x)):
        cols.setdefault(depth[node], []).append(node)
    pos = {}
    top = max(cols)
    for c, nodes in cols.items():
        for r, node in enumerate(nodes):
            pos[node] = (c / max(top, 1), 1 - (r + 1) / (len(nodes) + 1))
    return pos


def page_models(subjects) -> Figure:
    fig = new_page("The models: graphs per call site, and which inputs can reach which heads")
    n = len(subjects)
    for k, s in enumerate(subjects):
        ax = fig.add_axes([0.03 + k * 0.95 / n, 0.30, 0.9 / n, 0.58])
        edges = [tuple(e) for e in s.structure["edges"]]
        pos = _layout(edges, s.inputs)
        shared = s.structure["shared_layers"]
        for a, b in edges:
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate("", (x1, y1), (x0, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 1.2})
        for node, (x, y) in pos.items():
            layer, _, idx = node.partition("#")
            label = node if not idx else (f"{layer}\n(call {idx})" if layer in shared
                                          else layer)
            color = ("#f6c85f" if layer in shared else "#9dd9d2" if node in s.inputs
                     else "#c9d6f2" if layer in s.heads else "#eeeeee")
            ax.text(x, y, label, ha="center", va="center", fontsize=9,
                    bbox={"boxstyle": "round", "fc": color, "ec": "0.3"})
        ax.set_xlim(-0.15, 1.15)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(s.name, fontsize=12)
        reach = np.array(s.structure["structural"])
        rows = [f"{h:>8}: " + "  ".join(f"{inp} {'path' if r else '-'}"
                                       for inp, r in zip(s.inputs, row))
                for h, row in zip(s.heads, reach)]
        sh = ", ".join(f"{k} ({v} call sites)" for k, v in shared.items()) or "none"
        fig.text(0.05 + k * 0.95 / n, 0.25, "reachability (per call site):\n" + "\n".join(rows)
                 + f"\nshared layers: {sh}", fontsize=9.5, va="top", family="monospace")
    paragraph(fig, "Yellow: a shared layer, one set of weights called once per input. Edges "
              "follow call sites (left to right), so a head reached only through the shared "
              "layer's call on one input has no path from the other.", 0.08, width=140,
              size=9.5)
    return fig


def page_accuracy(subjects) -> Figure:
    fig = new_page("Held-out accuracy per head against the best possible from each source")
    runs = [s for s in subjects if s.run]
    if not runs:
        paragraph(fig, "No training run: a user's model has no reference accuracies.", 0.85)
        return fig
    sources = ("neither", "tweet_a", "tweet_b", "both")
    for k, s in enumerate(runs):
        ax = fig.add_axes([0.06 + k * 0.93 / len(runs), 0.22, 0.8 / len(runs), 0.62])
        heads = s.run["accuracy"]["heads"]
        x = np.arange(len(heads))
        width = 0.16
        for j, src in enumerate(sources):
            ax.bar(x + (j - 2) * width, [heads[h]["reference"][src] for h in heads], width,
                   label=f"reference: {src}", color=f"{0.85 - 0.17 * j:.2f}")
        acc = [heads[h]["accuracy"] for h in heads]
        ax.bar(x + 2 * width, acc, width, label="model", color="#d62728")
        for xi, a in zip(x, acc):
            ax.text(xi + 2 * width, a + 0.01, f"{a:.3f}", ha="center", fontsize=9)
        ax.set_xticks(x, [f"{h}\n{heads[h]['task']}" for h in heads], fontsize=10)
        ax.set_ylim(0.4, 1.08)
        ax.set_title(f"{s.name} ({s.run['accuracy']['samples']} held-out pairs)", fontsize=11)
        if k == 0:
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=8, loc="lower left")
    fig.text(0.04, 0.08, "References are Bayes-optimal accuracies from the generator's known "
             "author chains, on the very samples the model is scored on.", fontsize=9.5)
    return fig


def page_matrices(subjects) -> Figure:
    fig = new_page("Every probe's matrix: share of each head's dependence, 95% intervals")
    n = len(subjects)
    notes = []
    for k, s in enumerate(subjects):
        ax = fig.add_axes([0.07, 0.10 + (n - 1 - k) * 0.84 / n, 0.55, 0.84 / n - 0.12])
        cells = [(h, i) for h in range(len(s.heads)) for i in range(len(s.inputs))]
        names = list(s.results)
        for j, name in enumerate(names):
            _, summ = s.results[name]
            xs = np.arange(len(cells)) + (j - len(names) / 2) * 0.8 / len(names)
            y = [summ.share[h, i] for h, i in cells]
            lo = [summ.share[h, i] - summ.share_ci_low[h, i] for h, i in cells]
            hi = [summ.share_ci_high[h, i] - summ.share[h, i] for h, i in cells]
            ax.errorbar(xs, y, yerr=[lo, hi], fmt="o", ms=4, capsize=2, label=name)
        ax.set_xticks(range(len(cells)), [f"{s.heads[h]} <- {s.inputs[i]}" for h, i in cells],
                      fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("share", fontsize=9)
        ax.set_title(s.name, fontsize=11)
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title=None)
        base = s.results[MAIN][1].verdict
        for name in names:
            v = s.results[name][1].verdict
            for h, i in cells:
                if v[h, i] != base[h, i]:
                    notes.append(f"{s.name}: {s.heads[h]} <- {s.inputs[i]}: {name} says "
                                 f"{v[h, i]}, {MAIN} says {base[h, i]}")
    text = ("Disagreements between probes' verdicts:\n" + "\n".join(notes) if notes else
            "Every probe gives the same verdict in every cell of every model.")
    paragraph(fig, text, 0.86, width=34, size=8.5, x=0.80)
    return fig
