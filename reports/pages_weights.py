"""Pages 5-8: profiles over time, shared weights, the concatenation, method and provenance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.pages_answer import new_page, paragraph

PROFILED = ("ablation/occlusion", "attribution/integrated_gradients")


def page_profiles(subjects) -> Figure:
    fig = new_page("Over time: where along the sequence each head finds each input")
    n = len(subjects)
    for k, s in enumerate(subjects):
        for i, inp in enumerate(s.inputs):
            ax = fig.add_axes([0.07 + i * 0.47, 0.10 + (n - 1 - k) * 0.85 / n, 0.40,
                               0.85 / n - 0.12])
            for name in PROFILED:
                if name not in s.results or s.results[name][0].profile is None:
                    continue
                res = s.results[name][0]
                starts = res.profile_starts
                for h, head in enumerate(s.heads):
                    curve = res.profile[h, i].mean(axis=0)  # (W,) mean over samples
                    peak = np.abs(s.results[name][0].profile[:, i].mean(axis=1)).max()
                    style = "-" if name == PROFILED[0] else "--"
                    ax.plot(starts, curve / peak if peak > 0 else curve, style,
                            label=f"{head} ({name.split('/')[1]})", lw=1.3)
            ax.set_title(f"{s.name}: {inp}", fontsize=10)
            ax.set_xlabel("time step (window start for occlusion)", fontsize=8)
            ax.set_ylabel("effect / max over heads", fontsize=8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.text(0.04, 0.02, "Tweets are pre-padded: the characters sit at the end of the 280 "
             "steps. A head with no path to an input has a flat zero curve.", fontsize=9)
    return fig


def page_shared(subjects) -> Figure:
    fig = new_page("The shared weights: task gradients, coupling and task affinity")
    subs = [s for s in subjects if s.run and s.run.get("taskgrads")]
    ax = fig.add_axes([0.06, 0.56, 0.40, 0.33])
    ax2 = fig.add_axes([0.55, 0.56, 0.40, 0.33])
    for s in subs:
        tg = s.run["taskgrads"]
        steps = [r["step"] for r in tg["records"]]
        g = len(tg["groups"]) - 1
        ax.plot(steps, [r["cosine"][g][0][1] for r in tg["records"]], label=s.name, lw=1.2)
        for a, b in ((0, 1), (1, 0)):
            ax2.plot(steps, [r["affinity"][a][b] for r in tg["records"]], lw=1.2,
                     label=f"{s.name}: step on {tg['heads'][a]} -> {tg['heads'][b]}")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_title("cosine of head_1's and head_2's loss gradients on the shared weights",
                 fontsize=10)
    ax.set_xlabel("training step", fontsize=9)
    if not subs:
        ax.text(0.5, 0.5, "no training record (a user's model, or a run trained before "
                "taskgrads.json existed)", ha="center", transform=ax.transAxes, fontsize=9)
    else:
        ax.legend(fontsize=8)
    ax2.axhline(0, color="0.5", lw=0.8)
    ax2.set_title("lookahead task affinity 1 - L_j(after step on i) / L_j", fontsize=10)
    ax2.set_xlabel("training step", fontsize=9)
    if subs:
        ax2.legend(fontsize=7)
    lines = []
    ax3 = fig.add_axes([0.06, 0.10, 0.40, 0.32])
    labels, width = [], 0.35
    values, controls = [], []
    for s in subjects:
        if not s.shared:
            continue
        c = s.shared["coupling"]
        for j, head in enumerate(s.heads):
            for i, other in enumerate(s.heads):
                if i != j:
                    labels.append(f"{s.name}\nstep {head}\n-> {other}")
                    values.append(c["moved"][j][i])
                    controls.append(c["moved_control"][j][i])
        a = s.shared["agreement"]
        conflict = np.array(a["conflict_rate"])[-1, 0, 1]
        cos = np.array(a["cosine_full"])[-1, 0, 1]
        tg = s.run.get("taskgrads") if s.run else None
        over = ""
        if tg and tg["records"]:
            cs = np.array([r["cosine"][-1][0][1] for r in tg["records"]])
            over = f"; over training, conflict rate {np.mean(cs < 0):.2f} of {len(cs)} records"
        lines.append(f"{s.name}: at the final weights, cosine {cos:+.3f} over "
                     f"{s.shared['samples']} samples, conflict rate {conflict:.2f} over "
                     f"{a['params']['batches']} mini-batches{over}. Predicted vs measured loss "
                     "change of the other task after one step: " + ", ".join(
                         f"{c['predicted'][j][i]:.2e} vs {c['loss_change'][j][i]:.2e}"
                         for j in range(len(s.heads)) for i in range(len(s.heads)) if i != j))
    x = np.arange(len(labels))
    ax3.bar(x - width / 2, values, width, label="step on all the task's weights")
    ax3.bar(x + width / 2, controls, width, label="step on the head's own weights only")
    ax3.set_xticks(x, labels, fontsize=8)
    ax3.set_title("coupling: mean |change| of the other head's output after one step",
                  fontsize=10)
    if labels:
        ax3.legend(fontsize=8)
    paragraph(fig, "\n".join(lines) + "\nThe own-weights control moves the other head by "
              "exactly 0.0: all coupling goes through the shared layers.", 0.42, width=60,
              size=9, x=0.53)
    return fig


def page_concat(subjects) -> Figure:
    fig = new_page("What concatenation does: each call site's term in each head's logit")
    subs = [s for s in subjects if s.paths]
    ax = fig.add_axes([0.06, 0.45, 0.42, 0.42])
    labels, shares = [], []
    texts = []
    for s in subs:
        for head in s.paths["decomposition"]["heads"]:
            if head["kind"] == "not_decomposable":
                texts.append(f"{s.name} {head['target']}: not decomposable ({head['reason']})")
                continue
            labels.append(f"{s.name}\n{head['target']}")
            shares.append(head["share_centred"])
            res = head["max_abs_residual"]
            texts.append(f"{s.name} {head['target']} ({head['kind']}): parts "
                         + ", ".join(f"{p} {m:+.2f} (sd {d:.2f})" for p, m, d in
                                     zip(head["parts"], head["mean"], head["std"]))
                         + f", bias {head['bias']:+.3f}; max |parts + bias - logit| {res:.1e}")
    bottom = np.zeros(len(labels))
    width = max((len(sh) for sh in shares), default=0)
    for k in range(width):
        vals = np.array([sh[k] if k < len(sh) else 0 for sh in shares])
        ax.bar(np.arange(len(labels)), vals, bottom=bottom, label=f"part {k + 1}")
        bottom += vals
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_title("centred share of each concatenated call site (part 1: first input)",
                 fontsize=10)
    if labels:
        ax.legend(fontsize=8)
    ax2 = fig.add_axes([0.56, 0.45, 0.40, 0.42])
    labels, rel, lo, hi = [], [], [], []
    for s in subs:
        inter = s.paths.get("interaction")
        if not inter:
            continue
        for t, target in enumerate(inter["targets"]):
            labels.append(f"{s.name}\n{target}")
            rel.append(max(inter["relative"][t][0], 1e-12))
            lo.append(max(inter["relative_ci_low"][t][0], 1e-12))
            hi.append(max(inter["relative_ci_high"][t][0], 1e-12))
            texts.append(f"{s.name} {target}: interaction contrast {inter['mean_abs'][t][0]:.2e}"
                         f" ({inter['relative'][t][0]:.1e} of the logit's sd): "
                         f"{inter['verdict'][t][0]}")
    if labels:
        x = np.arange(len(labels))
        ax2.bar(x, rel, color="#8c564b")
        ax2.errorbar(x, rel, yerr=[np.array(rel) - lo, np.array(hi) - rel], fmt="none",
                     color="k", capsize=3)
        ax2.set_yscale("log")
        ax2.axhline(1e-5, color="r", lw=0.8, ls="--")
        ax2.set_xticks(x, labels, fontsize=8)
    ax2.set_title("interaction contrast f(a,b)-f(a',b)-f(a,b')+f(a',b') / sd(logit)",
                  fontsize=10)
    names = {s.name for s in subjects}
    hint = ("" if "concat_mlp" in names or not names & {"concat", "separate"} else
            " Run `probe report --variants concat,separate,concat_mlp` to compare with a "
            "hidden layer.")
    paragraph(fig, "\n".join(texts) + "\nA Dense head on a concatenation is additive in its "
              "parts, so it cannot represent an interaction such as 'same author'; a hidden "
              "layer (concat_mlp) can. Red line: the additivity tolerance (float noise); "
              "exact zeros are drawn at 1e-12." + hint, 0.36, width=150, size=8.5)
    return fig


METHODS_TEXT = (
    "ablation/<mode>: replace one input (shuffle: another sample's, derangements keyed by "
    "sample id; zero; mean; noise; occlusion: one time window at a time) and measure "
    "|change| of every head's output per sample. attribution/<method>: saliency, "
    "input x gradient, integrated gradients (Gauss-Legendre nodes, steps doubled until the "
    "median completeness gap < 1%), smoothgrad; sum of |attribution| per input, in logit "
    "space. shared: each task's loss gradient on every layer two heads use, its cosine and "
    "conflict rate; one gradient step per task and its effect on the other heads, with an "
    "own-weights control. paths: exact split of a Dense head over concatenated call sites, "
    "interaction contrast over sample pairs.\n"
    "Decision rule per cell: 'depends' when the one-sided paired t-test of e - 0.05 * (total "
    "effect of the head) is significant after Holm correction (alpha 0.05), i.e. the input's "
    "share exceeds 5%; exact zeros are 'zero' or 'structural_zero' (no path in the graph); "
    "95% intervals are percentile bootstraps (2000 resamples) over samples.")


def page_provenance(subjects, benchmark_png=None) -> Figure:
    fig = new_page("Method and provenance")
    lines = [METHODS_TEXT, ""]
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
        if s.timings:
            lines.append("   seconds: " + ", ".join(f"{k} {v:.1f}"
                                                  for k, v in s.timings.items()))
    paragraph(fig, "\n".join(lines), 0.91, width=160, size=8.5)
    if benchmark_png is not None:
        import matplotlib.image as mpimg

        ax = fig.add_axes([0.25, 0.02, 0.5, 0.33])
        ax.imshow(mpimg.imread(benchmark_png))
        ax.axis("off")
        ax.set_title("benchmark: time against work (benchmarks/run.py)", fontsize=9)
    return fig
