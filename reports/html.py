"""The report as one self-contained web page (report.html): the same saved results and the same
plotting data as the PDF's pages (reports.html_data), drawn with Bokeh (BokehJS inlined: the
page works offline, no CDN), the data embedded as JSON for the browser and for tests. No
TensorFlow here."""

from __future__ import annotations

import html
import json
from pathlib import Path

from bokeh.embed import components
from bokeh.resources import Resources

from probes.results import atomic
from reports import html_figures as figs
from reports.html_data import page_data
from reports.html_text import coloured_text

STYLE = """body{font-family:sans-serif;max-width:1300px;margin:1em auto;padding:0 1em;
color:#222}section{margin:2em 0;border-top:1px solid #ddd}h1{font-size:1.5em}
h2{font-size:1.2em}p.note{font-size:.9em;color:#444;max-width:1100px}
pre{white-space:pre-wrap;font-size:.85em;background:#f7f7f7;padding:.6em}
nav a{margin-right:1em}"""
# BokehJS with the widgets (the selects), inlined; no tables, WebGL or MathJax (1.8 MB).
SCRIPTS = ("bokeh", "bokeh-widgets")


def _section(key: str, title: str, parts: list) -> dict:
    return {"key": key, "title": title, "parts": [p for p in parts if p is not None]}


def sections(data: dict) -> list[dict]:
    """The page's sections, each a list of Bokeh models and HTML strings."""
    subs = list(enumerate(data["subjects"]))
    out = [_section("answer", "Which heads use which inputs: the answer", [
        f"<p class='note'>{html.escape(data['answer'])}</p>"] + [
        p for k, s in subs for p in (f"<h3>{html.escape(s['label'])}</h3>",
                                     figs.matrices(s, k))]),
        _section("models", "The models: graph per call site", [
            figs.graph(s) or f"<p>{html.escape(s['label'])}: a subclassed model, no graph to "
                             "read.</p>" for _, s in subs])]
    text = coloured_text(data["text"])
    out.append(_section("text", "Where each head reads: the coloured text", [
        text, f"<p class='note'>{html.escape((data['text'] or {}).get('rule', ''))} Red: the "
              "character pushes the head's logit up; blue: down; white: exactly 0.0.</p>"
        if text is not None else "<p>No model here has saved text to colour (the report "
        "keeps the characters of a training run's pairs only).</p>"]))
    out.append(_section("faithfulness", "Faithfulness: deletion and insertion curves", [
        figs.faithfulness(s) or f"<p>{html.escape(s['label'])}: no faithfulness result "
        f"({html.escape(s['skipped'].get('faithfulness', 'not computed'))}).</p>"
        for _, s in subs]))
    out.append(_section("sanity", "Sanity: cascading randomisation", [
        figs.sanity(s) or f"<p>{html.escape(s['label'])}: no sanity result "
        f"({html.escape(s['skipped'].get('sanity', 'not computed'))}).</p>" for _, s in subs]))
    if data["sharing"] is not None:
        out.append(_section("sharing", "What sharing the encoder is worth", [
            figs.sharing(data["sharing"]),
            f"<p class='note'>{html.escape(' '.join(data['sharing']['sentences']))}</p>"]))
    settings = [f"<pre>{html.escape(data['methods'])}</pre>"]
    for s in data["subjects"]:
        rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{p['samples']}</td>"
                       f"<td>{html.escape(json.dumps(p['params']))}</td></tr>"
                       for name, p in s["probes"].items())
        skipped = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>"
                          for k, v in s["skipped"].items())
        settings.append(f"<h3>{html.escape(s['label'])}</h3><table border=1 "
                        f"cellspacing=0 cellpadding=3><tr><th>probe</th><th>samples</th>"
                        f"<th>settings</th></tr>{rows}</table>"
                        + (f"<p>Not run:</p><ul>{skipped}</ul>" if skipped else ""))
    out.append(_section("settings", "Methods and settings used", settings))
    return out


def page(data: dict) -> str:
    """The page's HTML: BokehJS and the data inlined."""
    secs = sections(data)
    models = [p for s in secs for p in s["parts"] if not isinstance(p, str)]
    script, divs = components(models)
    divs = iter(divs)
    body = []
    for s in secs:
        inner = "".join(p if isinstance(p, str) else next(divs) for p in s["parts"])
        body.append(f'<section id="section-{s["key"]}"><h2>{html.escape(s["title"])}</h2>'
                    f"{inner}</section>")
    nav = "".join(f'<a href="#section-{s["key"]}">{html.escape(s["title"])}</a>' for s in secs)
    # "</" cannot end the JSON block early once its slashes are escaped.
    blob = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    scripts = Resources(mode="inline", components=list(SCRIPTS)).render()
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(data['title'])}</title>{scripts}"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(data['title'])}</h1>"
            f"<nav>{nav}</nav>"
            f'<script type="application/json" id="report-data">{blob}</script>'
            f"{''.join(body)}{script}</body></html>")


def write_html(subjects, out, *, sharing=None) -> Path:
    """Writes the page for loaded subjects (reports.load.Subject) atomically; returns its
    path."""
    return atomic.write_bytes(Path(out), page(page_data(subjects, sharing)).encode("utf-8"))
