"""The coloured-text page: a few held-out pairs, each character coloured by every head's signed
integrated-gradients attribution, heads side by side. Matplotlib only; reads the saved maps."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from probes.results import textmaps
from reports.layout import POINTS, new_page, paragraph

PROBE = "attribution/integrated_gradients"
PAIRS = 2  # held-out pairs shown per model
MONO = "DejaVu Sans Mono"
ADVANCE = 0.602  # DejaVu Sans Mono's advance width, in em
PAD = -1


def colours(values: np.ndarray, top: float) -> np.ndarray:
    """(L, 3) RGB in [0, 1]: white to red for positive values, to blue for negative, by
    |value| / top (the same scale as the terminal's `probe attribute --show`)."""
    rel = np.clip(values / top, -1, 1) if top > 0 else np.zeros_like(values)
    shade = 1 - 0.75 * np.abs(rel)
    out = np.ones((len(values), 3))
    out[rel > 0, 1:] = shade[rel > 0, None]
    out[rel < 0, :2] = shade[rel < 0, None]
    return out


def _usable(s) -> bool:
    res = s.results.get(PROBE, (None,))[0]
    return res is not None and res.maps is not None and s.texts is not None


def choose(subjects) -> tuple[list[int], str]:
    """The sample rows shown, and the rule in words: the pairs on which the model whose heads
    reach the most inputs (concat, of the question's two) reads its least-read input most."""
    usable = [s for s in subjects if _usable(s)]
    ref = max(usable, key=lambda s: int(np.sum(s.results[PROBE][0].structural)))
    res = ref.results[PROBE][0]
    mass = np.stack([np.abs(m).sum(axis=2) for m in res.maps], axis=1)  # (H, I, N)
    share = mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-30)
    reached = res.structural[:, :, None]
    least = np.where(reached, share, np.inf).min(axis=(0, 1))  # (N,)
    order = np.argsort(-least, kind="stable")[:PAIRS]
    rule = (f"Pairs shown: the {len(order)} held-out pairs on which {ref.label}'s heads read "
            "their least-read input most (the largest smallest share of |attribution| over its "
            "heads and the inputs they reach).")
    return [int(k) for k in order], rule


def page_text(subjects) -> Figure:
    fig = new_page("Where each head reads: integrated gradients on the characters")
    usable = [s for s in subjects if _usable(s)]
    if not usable:
        fig.text(0.04, 0.8, "No model here has saved text to colour (the report keeps the "
                 "characters of a training run's pairs only): `probe attribute --show K` colours "
                 "a sample's one-hot characters or tokens.", fontsize=11)
        return fig
    picks, rule = choose(usable)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, POINTS[0])
    ax.set_ylim(0, POINTS[1])
    ax.set_autoscale_on(False)  # the images below must not move the page's coordinates
    ax.axis("off")
    heads = max(len(s.heads) for s in usable)
    col_w = (POINTS[0] - 60) / heads
    y = POINTS[1] - 62
    size, per_line = _fit(usable, picks, col_w, room=y - 80)
    for s in usable:
        res = s.results[PROBE][0]
        ax.text(30, y, f"{s.label}", fontsize=10, fontweight="bold", va="top")
        y -= 13
        for k in picks:
            y = _pair(ax, s, res, k, y, col_w, size, per_line)
        y -= 4
    paragraph(fig, rule + " Red: the character pushes the head's logit up; blue: down; white: "
              "exactly 0.0 (a head with no path to a tweet leaves it white). One scale per head "
              "and pair, its largest |value|. Baseline: each tweet's own characters shuffled "
              "(the report's integrated gradients, 8 Gauss-Legendre nodes).",
              y=min(y, 60) / POINTS[1], width=175, size=8, bottom=0.01)
    return fig


def _fit(usable, picks, col_w, room) -> tuple[float, int]:
    """The largest character size (8 pt down to 5) at which every pair fits in `room` points,
    and the characters per line at that size."""
    for size in np.arange(8.0, 4.99, -0.25):
        per_line = int((col_w - 60) / (ADVANCE * size))
        height = 0.0
        for s in usable:
            height += 17
            for k in picks:
                lines = [-(-int(np.sum(codes[k] != PAD)) // per_line) for codes in
                         s.texts.values()]
                height += 12 + sum(1.35 * size * n + 2 for n in lines)
        if height <= room:
            return float(size), per_line
    return 5.0, int((col_w - 60) / (ADVANCE * 5.0))


def _pair(ax, s, res, k, y, col_w, size, per_line) -> float:
    """Draws sample row k of subject s (every head side by side); returns the next y."""
    line_h = 1.35 * size
    bottoms = []
    for h, head in enumerate(res.heads):
        x = 30 + h * col_w
        yy = y
        maps = [m[h, k] for m in res.maps]
        top = textmaps.scale(maps)  # the terminal's scale (probe attribute --show)
        ax.text(x, yy, f"pair {int(res.sample_ids[k])}, {head}", fontsize=7, va="top",
                color="0.25")
        yy -= 9
        for i, name in enumerate(res.inputs):
            codes = s.texts.get(name)
            if codes is None:
                continue
            row = codes[k]
            keep = np.flatnonzero(row != PAD)
            chars = "".join(chr(c) if 32 <= c < 127 else "\u00b7" for c in row[keep])
            rgb = colours(np.asarray(maps[i])[keep], top)
            ax.text(x, yy, name, fontsize=6, va="top", color="0.35")
            for start in range(0, len(chars), per_line):
                piece = chars[start:start + per_line]
                w = len(piece) * ADVANCE * size
                x0 = x + 44
                ax.imshow(rgb[None, start:start + per_line], extent=(x0, x0 + w, yy - line_h,
                                                                     yy), aspect="auto",
                          interpolation="nearest")
                # parse_math=False: a tweet's '$' is a character, not mathtext.
                ax.text(x0, yy - 0.3 * size, piece, family=MONO, fontsize=size, va="top",
                        parse_math=False)
                yy -= line_h
            yy -= 2
        bottoms.append(yy)
    return min(bottoms) - 3
