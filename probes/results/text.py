"""Plain-text tables for the command line."""

from __future__ import annotations


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """Column-aligned table; `align` has one 'l' or 'r' per column (default: first left)."""
    cells = [list(map(str, header))] + [[_fmt(c) for c in row] for row in rows]
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(r, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
