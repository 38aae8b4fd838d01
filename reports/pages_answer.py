"""Pages 1-2: the answer (every model's matrix and a paragraph from the numbers) and the
models' graphs. Matplotlib only; every page iterates over each model's own heads and inputs."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.layout import (
    MAIN,
    POINTS,
    fit_size,
    matrix_box,
    new_page,
    paragraph,
    plural,
    tick_labels,
)

# Kept importable from here (earlier versions defined them in this module).
__all__ = ["MAIN", "answer_text", "graph_layout", "new_page", "node_label", "page_answer",
           "page_models", "paragraph"]


def _shared_sentence(s) -> str:
    c = s.shared["coupling"]
    heads = s.shared["agreement"].get("heads", s.heads)
    moved = np.array(c["moved"])
    control = np.array(c["moved_control"])
    off = ~np.eye(len(heads), dtype=bool)
    layers = ", ".join(s.shared["agreement"]["groups"])
    cos = np.array(s.shared["agreement"]["cosine_full"])[-1]
    if len(heads) == 2:
        other, cosines = "the other head", f"is {cos[0, 1]:+.2f}"
    else:
        other = "each other head"
        cosines = "are " + ", ".join(f"{heads[a]}/{heads[b]} {cos[a, b]:+.2f}"
                                     for a in range(len(heads))
                                     for b in range(a + 1, len(heads)))
    return (f"   Shared weights in {s.label}: {layers}. One gradient step on one task moves "
            f"{other} by {moved[off].mean():.2e} on average (a step on the head's own weights: "
            f"{control[off].max():.1f}); the tasks' gradient cosine"
            f"{'' if len(heads) == 2 else 's'} on them {cosines}.")


def _interaction_sentence(s) -> str:
    inter = s.paths["interaction"]
    pairs = inter["input_pairs"]
    rel = np.array(inter["relative"])
    if len(pairs) == 1:
        return (f"   Interaction of {' and '.join(pairs[0])} in each head's logit: " + ", ".join(
            f"{t} {r:.1e} ({v[0]})" for t, r, v in
            zip(inter["targets"], rel[:, 0], inter["verdict"])) + ".")
    cells, none = [], 0
    for t, target in enumerate(inter["targets"]):
        for p, pair in enumerate(pairs):
            if inter["verdict"][t][p] == "structural_zero":
                none += 1
            else:
                cells.append(f"{target} {' x '.join(pair)} {rel[t, p]:.1e} "
                             f"({inter['verdict'][t][p]})")
    return ("   Interaction of each pair of inputs in each head's logit"
            + (": " + ", ".join(cells) if cells else "") + "; "
            + f"{plural(none, 'head and pair')} that no path links: structural_zero.")


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
        lines.append(f"{s.label}: {plural(outs, 'output')}{tasks}, so it is {kind}. Ablation "
                     f"by shuffling one input at a time on {res.samples} "
                     f"{'held-out ' if s.run else ''}samples: "
                     + "; ".join(cells) + ".")
        zeros = [f"{head} <- {inp}" for h, head in enumerate(s.heads)
                 for i, inp in enumerate(s.inputs) if summ.verdict[h, i] == "structural_zero"]
        if zeros:
            lines.append(f"   In {s.label} no path links {', '.join(zeros)}: those effects are "
                         "exactly 0.0 in every probe.")
        if s.shared:
            lines.append(_shared_sentence(s))
        if s.paths and s.paths.get("interaction"):
            lines.append(_interaction_sentence(s))
    both = [s for s in subjects if (s.results[MAIN][1].verdict == "depends").sum() > len(s.heads)]
    if both and len(subjects) > 1:
        lines.append("Only " + ", ".join(s.label for s in both) + " lets a head use information "
                     "from more than one input; elsewhere a head reads only its own input and "
                     "the tasks are linked only through the shared weights.")
    return "\n".join(lines)


def _matrix(fig, slot, s, probe=MAIN):
    summ = s.results[probe][1]
    share = np.asarray(summ.share, float)
    n_heads, n_inputs = share.shape
    box, cell_w, cell_h = matrix_box(slot, n_heads, n_inputs)
    ax = fig.add_axes(box)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    tick_labels(ax, "x", s.inputs, cell_w * n_inputs, base=10)
    tick_labels(ax, "y", s.heads, cell_h * n_heads, base=10)
    size = fit_size(9, chars=len("structural_zero") + 1, width_pt=cell_w, lines=4,
                    height_pt=cell_h)
    for h in range(n_heads):
        for i in range(n_inputs):
            ax.text(i, h, f"{summ.verdict[h, i]}\neffect {summ.effect[h, i]:.3g}\n"
                    f"share {share[h, i]:.2f}", ha="center", va="center", fontsize=size,
                    color="white" if share[h, i] > 0.6 else "black")
    ax.set_title(f"{s.label}: share of each head's dependence", fontsize=11)


def page_answer(subjects) -> Figure:
    fig = new_page("Which heads use which inputs: the answer")
    n = len(subjects)
    for k, s in enumerate(subjects):
        _matrix(fig, [0.05 + k * 0.9 / n, 0.50, 0.8 / n, 0.38], s)
    paragraph(fig, answer_text(subjects), 0.42, width=150, size=9, bottom=0.02)
    return fig


def graph_layout(edges, inputs):
    """Node -> (x, y): depth from the inputs, spread vertically; and the nodes per column."""
    preds: dict[str, set] = {}
    for a, b in edges:
        preds.setdefault(b, set()).add(a)
        preds.setdefault(a, set())
    for name in inputs:  # an input that reaches nothing is still drawn
        preds.setdefault(name, set())
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
    return pos, cols


def node_label(node, shared):
    """A graph node's label: the layer's name, with the call's index for a shared layer."""
    layer, _, idx = node.partition("#")
    return node if not idx else (f"{layer}\n(call {idx})" if layer in shared else layer)


def page_models(subjects) -> Figure:
    fig = new_page("The models: graphs per call site, and which inputs can reach which heads")
    n = len(subjects)
    for k, s in enumerate(subjects):
        box = [0.03 + k * 0.95 / n, 0.30, 0.9 / n, 0.58]
        if not s.structure.get("readable", True):  # a subclassed model's call is code
            fig.text(box[0] + 0.02, box[1] + box[3], f"{s.label}: a subclassed model, whose "
                     "call is Python code: no graph to read\n(every head may read every "
                     "input; the probes measure what it does)", fontsize=10, va="top")
            continue
        ax = fig.add_axes(box)
        edges = [tuple(e) for e in s.structure["edges"]]
        pos, cols = graph_layout(edges, s.inputs)
        shared = s.structure["shared_layers"]
        longest = max(len(line) for node in pos for line in node_label(node, shared).split("\n"))
        tallest = max(len(c) for c in cols.values())  # nodes in the fullest column
        size = fit_size(9, chars=longest + 2, width_pt=box[2] * POINTS[0] / (len(cols) + 0.3),
                        lines=2.6 * tallest, height_pt=box[3] * POINTS[1])
        for a, b in edges:
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate("", (x1, y1), (x0, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 1.2})
        for node, (x, y) in pos.items():
            layer = node.partition("#")[0]
            color = ("#f6c85f" if layer in shared else "#9dd9d2" if node in s.inputs
                     else "#c9d6f2" if layer in s.heads else "#eeeeee")
            ax.text(x, y, node_label(node, shared), ha="center", va="center", fontsize=size,
                    bbox={"boxstyle": "round", "fc": color, "ec": "0.3"})
        ax.set_xlim(-0.15, 1.15)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(s.label, fontsize=12)
        reach = np.array(s.structure["structural"]).reshape(len(s.heads), len(s.inputs))
        pad = max([8] + [len(h) for h in s.heads])
        rows = [f"{h:>{pad}}: " + "  ".join(f"{inp} {'path' if r else '-'}"
                                            for inp, r in zip(s.inputs, row))
                for h, row in zip(s.heads, reach)]
        sh = ", ".join(f"{k} ({v} call sites)" for k, v in shared.items()) or "none"
        text = ("reachability (per call site):\n" + "\n".join(rows)
                + f"\nshared layers: {sh}")
        size = fit_size(9.5, chars=max(len(line) for line in text.split("\n")) + 1,
                        width_pt=0.93 / n * POINTS[0], lines=len(rows) + 2,
                        height_pt=0.15 * POINTS[1])
        fig.text(0.05 + k * 0.95 / n, 0.25, text, fontsize=size, va="top", family="monospace")
    paragraph(fig, "Yellow: a shared layer, one set of weights called once per input. Edges "
              "follow call sites (left to right), so a head reached only through the shared "
              "layer's call on one input has no path from the other.", 0.08, width=140,
              size=9.5)
    return fig
