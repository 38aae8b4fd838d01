"""The web page's interactive figures (Bokeh), each drawn from the page's data
(reports.html_data): the dependency matrices with hover and a click-to-distribution panel,
faithfulness and sanity curves, the sharing learning curves and the graph per call site. The
per-sample values are read in the browser from the embedded JSON, not copied into the figures.
"""

from __future__ import annotations

from bokeh.layouts import column, row
from bokeh.models import (ColumnDataSource, CustomJS, Div, FactorRange, HoverTool, LabelSet,
                          LinearColorMapper, Range1d, Whisker)
from bokeh.palettes import Blues256, Category10_10
from bokeh.plotting import figure

# The page's data, parsed once in the browser (the block reports.html writes).
DATA_JS = ("const D = window.__report || (window.__report = JSON.parse("
           "document.getElementById('report-data').textContent));\n")
HIST_JS = DATA_JS + """
const k = src.selected.indices[0];
if (k === undefined) { return; }
const cell = src.data;
const e = D.subjects[subject].probes[cell.probe[k]].effects[cell.h[k]][cell.i[k]]
    .filter(v => v !== null);
const lo = Math.min(...e), hi = Math.max(...e), bins = 20;
const w = (hi - lo) / bins || 1, left = [], right = [], count = [];
for (let b = 0; b < bins; b++) { left.push(lo + b * w); right.push(lo + (b + 1) * w);
                                 count.push(0); }
for (const v of e) { count[Math.min(bins - 1, Math.floor((v - lo) / w))] += 1; }
hist.data = {left, right, count};
xr.start = lo - w; xr.end = hi + w; yr.start = 0; yr.end = Math.max(...count) * 1.1;
const mean = e.reduce((a, b) => a + b, 0) / e.length;
title.text = `<b>${cell.probe[k]}: ${cell.head[k]} &lt;- ${cell.input[k]}</b>: ` +
    `${e.length} per-sample effects, mean ${mean.toPrecision(4)}; ` +
    `interval ${cell.interval[k]}, verdict ${cell.verdict[k]}`;
"""
TOOLTIPS = [("cell", "@head <- @input"), ("probe", "@probe"), ("effect", "@effect_s"),
            ("interval", "@interval"), ("share", "@share_s @share_interval"),
            ("p", "@p_s"), ("verdict", "@verdict")]


def _g(x, fmt=".4g") -> str:
    return "nan" if x is None else format(x, fmt)


def matrix(sub: dict, index: int, probe: str, hist: ColumnDataSource, title: Div, dist):
    """One probe's (heads x inputs) matrix: colour the share, text the verdict; hover for the
    effect, interval, share, p and verdict; a click shows the cell's per-sample effects."""
    p = sub["probes"][probe]
    heads, inputs = sub["heads"], sub["inputs"]
    cells = [(h, i) for h in range(len(heads)) for i in range(len(inputs))]
    data = {k: [] for k in ("h", "i", "head", "input", "probe", "share", "effect_s",
                            "interval", "share_s", "share_interval", "p_s", "verdict", "label")}
    for h, i in cells:
        share = p["share"][h][i]
        data["h"].append(h)
        data["i"].append(i)
        data["head"].append(heads[h])
        data["input"].append(inputs[i])
        data["probe"].append(probe)
        data["share"].append(0.0 if share is None else share)
        data["effect_s"].append(_g(p["effect"][h][i]))
        data["interval"].append(f"[{_g(p['ci_low'][h][i])}, {_g(p['ci_high'][h][i])}]")
        data["share_s"].append(_g(share, ".3f"))
        data["share_interval"].append(f"[{_g(p['share_ci_low'][h][i], '.3f')}, "
                                      f"{_g(p['share_ci_high'][h][i], '.3f')}]")
        data["p_s"].append(_g(p["p_value"][h][i], ".3g"))
        data["verdict"].append(p["verdict"][h][i])
        data["label"].append(f"{p['verdict'][h][i]}\n{_g(share, '.2f')}")
    src = ColumnDataSource(data)
    side = max(60, min(90, 480 // max(len(inputs), 1)))
    fig = figure(x_range=FactorRange(*inputs), y_range=FactorRange(*reversed(heads)),
                 width=120 + side * len(inputs), height=70 + side * len(heads),
                 title=probe, tools="tap", toolbar_location=None, name=f"matrix:{probe}")
    mapper = LinearColorMapper(palette=Blues256[::-1][:200], low=0, high=1)
    fig.rect("input", "head", 1, 1, source=src, line_color="white",
             fill_color={"field": "share", "transform": mapper},
             nonselection_fill_alpha=0.6, selection_line_color="black", selection_line_width=3)
    fig.text("input", "head", "label", source=src, text_align="center", text_baseline="middle",
             text_font_size="9pt")
    fig.add_tools(HoverTool(tooltips=TOOLTIPS))
    src.selected.js_on_change("indices", CustomJS(
        args={"src": src, "hist": hist, "title": title, "subject": index,
              "xr": dist.x_range, "yr": dist.y_range}, code=HIST_JS))
    fig.grid.visible = False
    fig.axis.major_tick_line_color = None
    return fig


def matrices(sub: dict, index: int):
    """Every probe's matrix of one model, and the panel a click fills."""
    hist = ColumnDataSource({"left": [], "right": [], "count": []})
    title = Div(text="Click a cell to see the distribution of its per-sample effects.",
                width=700)
    dist = figure(width=520, height=220, title="per-sample effects of the clicked cell",
                  toolbar_location="right", tools="pan,wheel_zoom,box_zoom,reset,save",
                  x_range=Range1d(0, 1), y_range=Range1d(0, 1), name="distribution")
    dist.quad(left="left", right="right", top="count", bottom=0, source=hist,
              fill_color="#4c78a8", line_color="white")
    dist.xaxis.axis_label = "effect"
    dist.yaxis.axis_label = "samples"
    figs = [matrix(sub, index, probe, hist, title, dist) for probe in sub["probes"]]
    per = max(1, 1250 // figs[0].width)  # matrices a row on a wide screen
    rows = [row(*figs[k:k + per]) for k in range(0, len(figs), per)]
    return column(*rows, title, dist)


def _lines(fig, xs, named: dict, hover_extra: dict):
    for k, (name, ys) in enumerate(named.items()):
        src = ColumnDataSource({"x": xs, "y": [float("nan") if v is None else v for v in ys],
                                "name": [name] * len(xs),
                                "extra": [hover_extra.get(name, "")] * len(xs)})
        colour = "#555555" if name in ("random", "input") else Category10_10[k % 10]
        dash = "dotted" if name in ("random", "input") else "solid"
        fig.line("x", "y", source=src, color=colour, line_dash=dash, line_width=2,
                 legend_label=f"{name} {hover_extra.get(name, '')}".strip())
        fig.scatter("x", "y", source=src, color=colour, size=5)
    fig.add_tools(HoverTool(tooltips=[("method", "@name"), ("x", "@x{0.00}"),
                                      ("y", "@y{0.000}"), ("", "@extra")]))
    fig.legend.label_text_font_size = "8pt"
    fig.legend.click_policy = "hide"


TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def faithfulness(sub: dict):
    faith = sub["trust"].get("faithfulness")
    if faith is None:
        return None
    figs = []
    for kind in ("deletion", "insertion"):
        fig = figure(width=460, height=320, title=f"{sub['label']}: {kind}", tools=TOOLS,
                     name=f"faithfulness:{kind}")
        _lines(fig, faith["fractions"], {m: v["median"] for m, v in faith[kind].items()},
               {m: f"(area {_g(v['area'], '.2f')})" for m, v in faith[kind].items()})
        done = "removed" if kind == "deletion" else "restored"
        fig.xaxis.axis_label = f"fraction of steps {done}"
        fig.yaxis.axis_label = "normalised head score (median)"
        figs.append(fig)
    return row(*figs)


def sanity(sub: dict):
    san = sub["trust"].get("sanity")
    if san is None:
        return None
    steps = list(range(len(san["layers"]) + 1))
    fig = figure(width=620, height=340, title=f"{sub['label']}: cascading randomisation",
                 tools=TOOLS, y_range=(-0.05, 1.05), name="sanity")
    verdicts = {m: "; ".join(f"{c} {v}" for c, v in d["verdicts"].items())
                for m, d in san["methods"].items()}
    _lines(fig, steps, {m: d["curve"] for m, d in san["methods"].items()}, verdicts)
    fig.line(steps, [san["threshold"]] * len(steps), color="#999999", line_dash="dashed")
    fig.xaxis.ticker = steps
    fig.xaxis.major_label_overrides = {k: ("trained" if k == 0 else f"+{san['layers'][k - 1]}")
                                       for k in steps}
    fig.xaxis.major_label_orientation = 0.5
    fig.yaxis.axis_label = "|Spearman's rho| with the trained model's maps"
    return fig


def sharing(data: dict):
    figs = []
    for h, (head, arms) in enumerate(data["curves"].items()):
        fig = figure(width=420, height=320, x_axis_type="log", tools=TOOLS,
                     title=f"{head}: held-out accuracy", name=f"sharing:{head}")
        for k, (arm, c) in enumerate(arms.items()):
            src = ColumnDataSource({"x": data["sizes"], "y": c["mean"],
                                    "low": [v if v is not None else m for v, m in
                                            zip(c["low"], c["mean"])],
                                    "high": [v if v is not None else m for v, m in
                                             zip(c["high"], c["mean"])],
                                    "arm": [arm] * len(data["sizes"])})
            fig.line("x", "y", source=src, color=Category10_10[k], legend_label=arm,
                     line_width=2)
            fig.scatter("x", "y", source=src, color=Category10_10[k], size=6)
            fig.add_layout(Whisker(source=src, base="x", lower="low", upper="high",
                                   line_color=Category10_10[k]))
        fig.add_tools(HoverTool(tooltips=[("arm", "@arm"), ("pairs", "@x"),
                                          ("accuracy", "@y{0.000} [@low{0.000}, "
                                           "@high{0.000}]")]))
        fig.xaxis.axis_label = "training pairs"
        fig.legend.location = "bottom_right"
        figs.append(fig)
    return row(*figs)


COLOURS = {"shared": "#f6c85f", "input": "#9dd9d2", "head": "#c9d6f2", "layer": "#eeeeee"}


def graph(sub: dict):
    g = sub["graph"]
    if not g["readable"]:
        return None
    pos = {n["name"]: (n["x"], n["y"]) for n in g["nodes"]}
    fig = figure(width=760, height=360, x_range=(-0.15, 1.15), y_range=(0, 1), tools=TOOLS,
                 title=f"{sub['label']}: graph per call site", name="graph")
    fig.segment([pos[a][0] for a, _ in g["edges"]], [pos[a][1] for a, _ in g["edges"]],
                [pos[b][0] for _, b in g["edges"]], [pos[b][1] for _, b in g["edges"]],
                color="#888888", line_width=1.5)
    src = ColumnDataSource({"x": [n["x"] for n in g["nodes"]], "y": [n["y"] for n in g["nodes"]],
                            "name": [n["name"] for n in g["nodes"]],
                            "label": [n["label"] for n in g["nodes"]],
                            "kind": [n["kind"] for n in g["nodes"]],
                            "colour": [COLOURS[n["kind"]] for n in g["nodes"]]})
    fig.scatter("x", "y", source=src, size=26, marker="square", fill_color="colour",
                line_color="#333333")
    fig.add_layout(LabelSet(x="x", y="y", text="label", source=src, y_offset=16,
                            text_align="center", text_font_size="8pt"))
    fig.add_tools(HoverTool(tooltips=[("node", "@name"), ("kind", "@kind")]))
    fig.axis.visible = False
    fig.grid.visible = False
    return fig
