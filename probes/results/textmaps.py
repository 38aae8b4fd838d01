"""Attribution maps on the text: which characters (or tokens) a head reads.

`symbols` turns one sample of an input back into what it shows: characters for one-hot rows
over code points (the synthetic tweets and the quotes: one-hot over 256 codes), token ids for
integer inputs, nothing for other inputs. `render` colours each symbol by its signed
attribution, as inseq and LIT do on tokens: red for positive (pushes the head's score up), blue
for negative, intensity by |value| over the largest |value| of that head on the sample (every
input on one scale, so a head that cannot see an input shows it uncoloured). Without colour, a
line of marks under the text carries the same information.
"""

from __future__ import annotations

import numpy as np

# |value| / scale at or above this is marked '+'/'-' (strong); below it '.'; exactly 0 ' '.
STRONG = 0.25
WIDTH = 96  # characters per line


def symbols(x: np.ndarray, vocabulary=None) -> tuple[list[str], np.ndarray] | None:
    """What one sample of an input shows, and which of its positions are shown.

    Args:
        x: one sample, (T, F) one-hot rows or (T,) integer token ids.
        vocabulary: the tokens' texts by id (the model's own TextVectorization), or None:
            ids are shown as [id].
    Returns:
        (symbols, positions): the printable symbol of each shown position and their indices
        into the time axis (pre-padding, all-zero one-hot rows, is not shown); None for an
        input that is neither (its map can still be read from the result's arrays).
    """
    x = np.asarray(x)
    if x.ndim == 1 and (x.dtype.kind in "iu" or np.all(np.mod(x, 1) == 0)):
        keep = np.flatnonzero(x != 0) if np.any(x != 0) else np.arange(x.size)
        if vocabulary is not None:
            return [(vocabulary[int(v)] if 0 <= v < len(vocabulary) else f"[{int(v)}]") + " "
                    for v in x[keep]], keep  # words, a space after each
        return [f"[{int(v)}]" for v in x[keep]], keep
    if x.ndim != 2:
        return None
    row_sums = x.sum(axis=1)
    one_hot = (np.all((x == 0) | (x == 1)) and np.all((row_sums == 0) | (row_sums == 1)))
    if not one_hot or x.shape[1] < 128:
        return None
    keep = np.flatnonzero(row_sums == 1)
    codes = x[keep].argmax(axis=1)
    return [chr(c) if 32 <= c < 127 else "\u00b7" for c in codes], keep


def scale(maps: list[np.ndarray]) -> float:
    """The largest |value| over a head's maps of one sample (every input): the colour scale."""
    return max((float(np.max(np.abs(m))) for m in maps if np.size(m)), default=0.0)


def render(shown: list[str], values: np.ndarray, top: float, ansi: bool) -> str:
    """The symbols with their values: ANSI background colours, or (without colour) each line
    of text followed by a line of marks ('+' strong positive, '-' strong negative, '.' weaker,
    ' ' exactly zero).

    Args:
        shown: the symbols (see `symbols`).
        values: (len(shown),) signed attribution of each.
        top: the colour scale (see `scale`); 0 means nothing was attributed.
    """
    values = np.asarray(values, np.float64)
    lines, line, marks, used = [], [], [], 0
    for sym, v in zip(shown, values):
        if used + len(sym) > WIDTH and line:
            lines.append(("".join(line), "".join(marks)))
            line, marks, used = [], [], 0
        rel = v / top if top > 0 else 0.0
        if ansi:
            line.append(_colour(sym, rel))
        else:
            line.append(sym)
        mark = (" " if v == 0 else ("+" if rel >= STRONG else "-" if rel <= -STRONG else "."))
        marks.append(mark * len(sym))
        used += len(sym)
    if line:
        lines.append(("".join(line), "".join(marks)))
    if ansi:
        return "\n".join(text for text, _ in lines)
    return "\n".join(f"{text}\n{mark_line.rstrip()}" for text, mark_line in lines)


def _colour(sym: str, rel: float) -> str:
    """`sym` on a background from white to red (rel > 0) or blue (rel < 0), black text."""
    a = min(1.0, abs(rel))
    shade = int(round(255 * (1 - 0.75 * a)))
    r, g, b = (255, shade, shade) if rel > 0 else (shade, shade, 255)
    if rel == 0:
        return sym
    return f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{sym}\x1b[0m"
