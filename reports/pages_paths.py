"""Pages 7-8: what concatenation does (each call site's term in each head's logit, the
interaction contrast per pair of inputs) and method and provenance. Matplotlib only."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.layout import POINTS, new_page, paragraph, tick_labels

FLOOR = 1e-12  # exact zeros drawn on the log axis
MANY = 16  # above this many (head, pair) cells, the structural zeros are counted, not drawn


def _decomposition(ax, subs, texts, prefix) -> float:
    """Stacked centred shares per head; returns how far its labels reach below (points)."""
    labels, shares, keys = [], [], []
    for s in subs:
        for head in s.paths["decomposition"]["heads"]:
            if head["kind"] == "not_decomposable":
                texts.append(f"{s.label} {head['target']}: not decomposable ({head['reason']})")
                continue
            labels.append(prefix(s) + head["target"])
            # a part is named by the inputs its call site reads
            part_keys = [" + ".join(ins) for ins in head.get("part_inputs", [])]
            if len(part_keys) != len(head["parts"]):
                part_keys = list(head["parts"])
            shares.append(dict(zip(part_keys, head["share_centred"])))
            keys += [k for k in part_keys if k not in keys]
            res = head["max_abs_residual"]
            texts.append(f"{s.label} {head['target']} ({head['kind']}): parts "
                         + ", ".join(f"{p} {m:+.2f} (sd {d:.2f})" for p, m, d in
                                     zip(head["parts"], head["mean"], head["std"]))
                         + f", bias {head['bias']:+.3f}; max |parts + bias - logit| {res:.1e}")
    bottom = np.zeros(len(labels))
    for key in keys:
        vals = np.array([sh.get(key, 0.0) for sh in shares])
        ax.bar(np.arange(len(labels)), vals, bottom=bottom, label=key)
        bottom += vals
    below = tick_labels(ax, "x", labels, 0.42 * POINTS[0], base=8)
    ax.set_title("centred share of each concatenated call site, by the input it reads",
                 fontsize=10)
    if labels:
        ax.legend(fontsize=8 if len(keys) <= 6 else 6)
    return below


def _interaction(ax, subs, texts, prefix) -> float:
    """Relative interaction contrast per (head, pair of inputs); returns how far its labels
    reach below (points)."""
    cells = []  # (label, relative, low, high, text, structural)
    for s in subs:
        inter = s.paths.get("interaction")
        if not inter:
            continue
        one = len(inter["input_pairs"]) == 1
        for t, target in enumerate(inter["targets"]):
            for p, pair in enumerate(inter["input_pairs"]):
                what = "" if one else f" {' x '.join(pair)}"
                verdict = inter["verdict"][t][p]
                cells.append((prefix(s) + target + ("" if one else "\n" + " x ".join(pair)),
                              inter["relative"][t][p], inter["relative_ci_low"][t][p],
                              inter["relative_ci_high"][t][p],
                              f"{s.label} {target}{what}: interaction contrast "
                              f"{inter['mean_abs'][t][p]:.2e} ({inter['relative'][t][p]:.1e} "
                              f"of the logit's sd): {verdict}", verdict == "structural_zero"))
    if len(cells) > MANY:
        zeros = sum(c[5] for c in cells)
        cells = [c for c in cells if not c[5]]
        if zeros:
            texts.append(f"{zeros} (head, pair of inputs) cells that no path links are "
                         "structural_zero (exactly 0.0) and not drawn.")
    if len(cells) <= 4:
        texts.extend(c[4] for c in cells)
    elif cells:  # many: one paragraph rather than a line each
        texts.append("Interaction contrast (relative to the logit's sd) per head and pair of "
                     "inputs: " + "; ".join(c[4].split(" ", 1)[1].replace(
                         ": interaction contrast", "") for c in cells) + ".")
    for s in subs:
        if not s.paths.get("interaction"):
            texts.append(f"{s.label}: no interaction contrast: "
                         + ("one input, so no pair of inputs to interact." if len(s.inputs) < 2
                            else "not computed for this model."))
    if not cells:
        ax.axis("off")
        return 0.0
    x = np.arange(len(cells))
    rel, lo, hi = (np.maximum([c[k] for c in cells], FLOOR) for k in (1, 2, 3))
    ax.bar(x, rel, color="#8c564b")
    ax.errorbar(x, rel, yerr=[rel - lo, hi - rel], fmt="none", color="k", capsize=3)
    ax.set_yscale("log")
    ax.axhline(1e-5, color="r", lw=0.8, ls="--")
    below = tick_labels(ax, "x", [c[0] for c in cells], 0.40 * POINTS[0], base=8)
    ax.set_title("interaction contrast f(a,b)-f(a',b)-f(a,b')+f(a',b') / sd(logit)",
                 fontsize=10)
    return below


def page_concat(subjects) -> Figure:
    fig = new_page("What concatenation does: each call site's term in each head's logit")
    subs = [s for s in subjects if s.paths]
    texts = [f"{s.label}: nothing to show on concatenation: "
             f"{s.skipped.get('paths/decomposition', 'no result saved')}."
             for s in subjects if not s.paths]
    if subs:
        def prefix(s):
            return f"{s.label}\n" if len(subjects) > 1 else ""

        below = max(_decomposition(fig.add_axes([0.06, 0.45, 0.42, 0.42]), subs, texts, prefix),
                    _interaction(fig.add_axes([0.56, 0.45, 0.40, 0.42]), subs, texts, prefix))
    names = {s.name for s in subjects if s.run}
    if names:
        close = ("A Dense head on a concatenation is additive in its parts, so it cannot "
                 "represent an interaction such as 'same author'; a hidden layer (concat_mlp) "
                 "can.")
    else:
        close = ("A Dense head on a concatenation is additive in its parts, so its interaction "
                 "contrast is float noise; a non-linear layer between the parts and the head "
                 "can make it interact.")
    if any(s.paths.get("interaction") for s in subs):
        close += (" Red line: the additivity tolerance (float noise); exact zeros are drawn "
                  "at 1e-12.")
    if names and "concat_mlp" not in names and names & {"concat", "separate"}:
        close += (" Run `probe report --variants concat,separate,concat_mlp` to compare with a "
                  "hidden layer.")
    top = min(0.36, 0.43 - below / POINTS[1]) if subs else 0.88  # under the axes' labels
    paragraph(fig, "\n".join(texts + [close]), top, width=150, size=8.5, bottom=0.02)
    return fig


def methods_text(subjects) -> str:
    """What the probes and the decision rule do, with the settings read from the results
    themselves (the nodes integrated gradients ran with, the rule's alpha, threshold and
    bootstrap), never assumed."""
    ig, rule = [], None
    for s in subjects:
        for name, (res, _) in s.results.items():
            p = res.params
            if name == "attribution/integrated_gradients":
                ig.append(f"{s.name}: {p['steps']} {p['quadrature'].replace('_', '-')} nodes "
                          f"from a {p['baseline']} baseline, median completeness gap "
                          f"{p['median_gap']:.1e}")
            if rule is None and name.startswith("ablation/"):
                rule = res.summary().settings
    text = ("ablation/<mode>: replace one input (shuffle: another sample's, derangements keyed "
            "by sample id; zero; mean; noise; occlusion: one time window at a time) and measure "
            "|change| of every head's output per sample. attribution/<method>: saliency, "
            "input x gradient, integrated gradients ("
            + ("; ".join(ig) if ig else "not run") + "), smoothgrad; sum of |attribution| "
            "per input, in logit space. shared: each task's loss gradient on every layer two "
            "heads use, its cosine and conflict rate; one gradient step per task and its effect "
            "on the other heads, with an own-weights control. paths: exact split of a Dense "
            "head over concatenated call sites, interaction contrast over sample pairs.\n")
    if rule is None:
        return text + "Decision rule: no ablation result was saved."
    return text + (
        f"Decision rule per cell: 'depends' when the input's share of the head's effect "
        f"(mean e / mean total) is significantly above {rule['delta']:.0%}, 'negligible' when "
        f"significantly below: {rule['test']} (alpha {rule['alpha']}); exact zeros are 'zero' "
        f"or 'structural_zero' (no path in the graph); {rule['confidence']:.0%} intervals are "
        f"percentile bootstraps ({rule['n_boot']} resamples) over samples; cells with fewer "
        f"than {rule['min_samples']} samples are too_few_samples.")


def page_provenance(subjects, benchmark_png=None) -> Figure:
    fig = new_page("Method and provenance")
    lines = [methods_text(subjects), ""]
    for s in subjects:
        if s.run:
            m = s.run["manifest"]
            a = m["arguments"]
            v = m["versions"]
            lines.append(f"{s.name}: run {s.path.name}, seed {m['seed']} (children "
                         f"{m.get('child_seeds')}), {a['n_train']} training pairs, "
                         f"{a['epochs']} epochs, trained in {s.run['history']['seconds']:.0f} s;"
                         f" commit {m.get('commit')}; " + ", ".join(f"{k} {val}" for k, val in
                                                                 v.items()))
        else:
            lines.append(f"{s.name}: a user's model, results in {s.path}")
        probes = []
        for name, (res, _) in s.results.items():
            p = res.params
            extra = (f", {p['steps']} {p.get('quadrature', '')} steps, median gap "
                     f"{p['median_gap']:.1e}" if "steps" in p else "")
            probes.append(f"{name} (n={res.samples}, seed {res.seed}{extra})")
        lines.append("   probes: " + "; ".join(probes))
        if s.skipped:
            lines.append("   not run: " + "; ".join(f"{k} ({v})" for k, v in s.skipped.items()))
        if s.timings:
            lines.append("   seconds: " + ", ".join(f"{k} {v:.1f}"
                                                  for k, v in s.timings.items()))
    paragraph(fig, "\n".join(lines), 0.91, width=160, size=8.5,
              bottom=0.37 if benchmark_png is not None else 0.02)
    if benchmark_png is not None:
        import matplotlib.image as mpimg

        ax = fig.add_axes([0.25, 0.02, 0.5, 0.33])
        ax.imshow(mpimg.imread(benchmark_png))
        ax.axis("off")
        ax.set_title("benchmark: time against work (benchmarks/run.py)", fontsize=9)
    return fig
