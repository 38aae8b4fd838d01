"""Page helpers shared by the report's pages: the page, paragraphs that fit, sizes that scale
with the number of heads, inputs and labels. Matplotlib only."""

from __future__ import annotations

import math
import textwrap

from matplotlib.figure import Figure

PAGE = (11.69, 8.27)  # A4 landscape, inches
POINTS = (PAGE[0] * 72, PAGE[1] * 72)  # the page in points, for sizing text
MAIN = "ablation/shuffle"
MIN_SIZE = 5.0  # the smallest font a page uses (points): still legible on paper


def new_page(title: str) -> Figure:
    fig = Figure(figsize=PAGE)
    fig.suptitle(title, fontsize=15, fontweight="bold", x=0.04, ha="left", y=0.97)
    return fig


def wrapped(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(p, width) for p in text.split("\n"))


def paragraph(fig: Figure, text: str, y: float, width: int = 150, size: float = 10.5,
              x: float = 0.04, bottom: float | None = None) -> None:
    """Text from `y` down (figure fractions), wrapped at `width` characters. With `bottom`, a
    text too long for the space is set smaller (and wrapped wider, over the same width on the
    page) until it fits; one that fits keeps `size`."""
    if bottom is not None:
        room = (y - bottom) * POINTS[1]
        start = size
        while size > MIN_SIZE:  # the largest size, in steps of 0.25 pt, at which it fits
            lines = wrapped(text, int(width * start / size)).count("\n") + 1
            if 1.2 * size * lines <= room:  # matplotlib's line spacing is 1.2
                break
            size = max(MIN_SIZE, size - 0.25)
        width = int(width * start / size)  # the same width on the page
    fig.text(x, y, wrapped(text, width), fontsize=size, va="top", ha="left",
             family="DejaVu Sans")


def fit_size(base: float, *, chars: int = 1, width_pt: float = math.inf, lines: int = 1,
             height_pt: float = math.inf) -> float:
    """The largest font size up to `base` at which `lines` lines of `chars` characters fit in
    width_pt x height_pt points (DejaVu Sans: about 0.6 em a character, 1.2 em a line)."""
    size = min(base, width_pt / (0.6 * max(chars, 1)), height_pt / (1.2 * max(lines, 1)))
    return max(MIN_SIZE, size)


SLANT = 35  # degrees, for x labels too long to stand side by side


def tick_labels(ax, axis: str, labels, span_pt: float, base: float = 9) -> float:
    """Ticks 0..n-1 labelled on `axis` ("x" or "y"), set smaller when many share `span_pt`
    points; x labels that still would not fit side by side are slanted. Returns about how far
    (points) the x labels reach below the axis."""
    n = max(len(labels), 1)
    longest = max((len(line) for label in labels for line in str(label).split("\n")),
                  default=1)
    lines = max((str(label).count("\n") + 1 for label in labels), default=1)
    per = span_pt / n
    if axis == "y":
        ax.set_yticks(range(len(labels)), labels, fontsize=fit_size(base, height_pt=per))
        return 0.0
    if fits(labels, span_pt, min(base, 7)):
        size = fit_size(base, chars=longest + 2, width_pt=per / 1.1)  # 0.6 em is an average
        ax.set_xticks(range(len(labels)), labels, fontsize=size)
        return 7 + 1.2 * size * lines
    size = fit_size(min(base, 8), lines=lines, height_pt=per * 0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=SLANT, ha="right",
                  rotation_mode="anchor", fontsize=size)
    return 7 + size * (0.6 * longest * math.sin(math.radians(SLANT))
                       + 1.2 * lines * math.cos(math.radians(SLANT)))


def fits(labels, span_pt: float, size: float) -> bool:
    """Whether the labels stand side by side in `span_pt` points at `size` or larger."""
    longest = max((len(line) for label in labels for line in str(label).split("\n")),
                  default=1)
    return span_pt / max(len(labels), 1) / 1.1 >= 0.6 * (longest + 2) * size


def matrix_box(slot, rows: int, cols: int, widest: float = 90.0):
    """The axes box (figure fractions) of a rows x cols matrix in `slot` [x, y, w, h]: square
    cells, or cells up to `widest` points wide when the rows leave them short, so that a cell's
    text stays legible; centred in the slot, top-aligned. Returns (box, cell_w, cell_h) in
    points."""
    x, y, w, h = slot
    cell_h = min(h * POINTS[1] / rows, w * POINTS[0] / cols)
    cell_w = min(w * POINTS[0] / cols, max(cell_h, widest))
    bw, bh = cell_w * cols / POINTS[0], cell_h * rows / POINTS[1]
    return [x + (w - bw) / 2, y + h - bh if bh < h else y, bw, bh], cell_w, cell_h


def grid(count: int, per_row: int) -> tuple[int, int]:
    """(rows, columns) for `count` panels with at most `per_row` a row."""
    cols = max(1, min(count, per_row))
    return -(-count // cols), cols


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"
