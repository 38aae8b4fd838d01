"""The web page's coloured text: lists to choose the model, held-out pair, head and method, and
the characters of every input coloured by that head's attribution (white to red for positive,
to blue for negative, by |value| / the largest |value| of the head on the pair: the PDF's and
the terminal's scale). The values are read in the browser from the embedded JSON."""

from __future__ import annotations

import base64

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import CustomJS, Div, Select

from reports.pages_text import colours

RENDER_JS = """
const D = window.__report || (window.__report = JSON.parse(
    document.getElementById('report-data').textContent));
function f16(b64) {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const view = new DataView(bytes.buffer), out = [];
  for (let j = 0; j < bytes.length; j += 2) {
    const h = view.getUint16(j, true), s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31,
          m = h & 1023;
    out.push(e === 0 ? s * m * 2 ** -24 : e === 31 ? NaN : s * (1 + m / 1024) * 2 ** (e - 15));
  }
  return out;
}
function colour(v) {
  const r = Math.max(-1, Math.min(1, v)), shade = Math.round(255 * (1 - 0.75 * Math.abs(r)));
  return r > 0 ? `rgb(255,${shade},${shade})` : r < 0 ? `rgb(${shade},${shade},255)`
                                                     : 'rgb(255,255,255)';
}
const esc = c => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'}[c] || c);
const T = D.text.subjects[model.value];
if (cb_obj === model) {
  const methods = Object.keys(T.methods), heads = Object.keys(T.methods[methods[0]]);
  method.options = methods; head.options = heads;
  if (!methods.includes(method.value)) { method.value = methods[0]; }
  if (!heads.includes(head.value)) { head.value = heads[0]; }
  pair.options = T.pairs.map((id, k) => [String(k), `pair ${id}`]);
}
const k = Number(pair.value), one = T.methods[method.value][head.value][k];
let html = `<div class="pair-caption">${model.value}, pair ${T.pairs[k]}, ${head.value}, ` +
    `${method.value} (scale ${one.top.toPrecision(3)})</div>`;
for (const [name, b64] of Object.entries(one.values)) {
  const vals = f16(b64), chars = [...T.chars[name][k]];
  html += `<div class="tweet"><span class="input">${name}</span>` + chars.map((c, j) =>
      `<span style="background:${colour(vals[j])}" title="${vals[j] * one.top}">${esc(c)}</span>`
  ).join('') + '</div>';
}
out.text = html;
"""


def render(text: dict, model: str, k: int, head: str, method: str) -> str:
    """The first view's HTML, as the browser draws it on a change (the same colours)."""
    t = text["subjects"][model]
    one = t["methods"][method][head][k]
    html = [f'<div class="pair-caption">{model}, pair {t["pairs"][k]}, {head}, {method} '
            f'(scale {one["top"]:.3g})</div>']
    for name, b64 in one["values"].items():
        vals = np.frombuffer(base64.b64decode(b64), "<f2").astype(float)
        rgb = np.round(255 * colours(vals, 1.0)).astype(int)
        chars = t["chars"][name][k]
        spans = "".join(
            f'<span style="background:rgb({r},{g},{b})" title="{v * one["top"]}">'
            f'{_esc(c)}</span>' for c, (r, g, b), v in zip(chars, rgb, vals))
        html.append(f'<div class="tweet"><span class="input">{name}</span>{spans}</div>')
    return "".join(html)


def _esc(c: str) -> str:
    return {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}.get(c, c)


def coloured_text(text: dict):
    """The selects and the coloured characters; None without saved text."""
    if not text or not text["subjects"]:
        return None
    model = next(iter(text["subjects"]))
    t = text["subjects"][model]
    methods = list(t["methods"])
    heads = list(t["methods"][methods[0]])
    first = text["first"][0] if text["first"] else 0
    selects = {
        "model": Select(title="model", value=model, options=list(text["subjects"]),
                        name="select:model"),
        "pair": Select(title="held-out pair", value=str(first),
                       options=[(str(k), f"pair {i}") for k, i in enumerate(t["pairs"])],
                       name="select:pair"),
        "head": Select(title="head", value=heads[0], options=heads, name="select:head"),
        "method": Select(title="method", value=methods[0], options=methods,
                         name="select:method")}
    out = Div(text=render(text, model, first, heads[0], methods[0]), width=1100,
              name="coloured-text", stylesheets=[
                  ".tweet{font-family:monospace;font-size:13px;line-height:1.6;margin:4px 0;"
                  "word-break:break-all}.input{color:#555;margin-right:8px;font-family:sans-serif}"
                  ".pair-caption{color:#333;font-size:12px;margin-bottom:4px}"])
    callback = CustomJS(args={**selects, "out": out}, code=RENDER_JS)
    for s in selects.values():
        s.js_on_change("value", callback)
    return column(row(*selects.values()), out)
