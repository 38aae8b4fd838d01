"""Input-ablation probes: replace one input, see how far each head moves.

All heads are scored from the same forward passes. Modes:
  shuffle    input i of each sample replaced by input i of another sample (several random
             derangements; keeps the input on the data distribution). Breiman (2001),
             permutation importance, applied per input and per head.
  zero       input i set to 0 (token id 0 for integer inputs).
  mean       input i set to its mean over the background samples.
  noise      Gaussian noise at the input's own scale (std over the background) added to input
             i; the same noise draws for every sample (common random numbers).
  occlusion  windows along axis 1 (time) set to 0, one at a time; the effect of the input is the
             sum over windows, and the per-window effects give a profile over time (one window
             length for every input, from the longest; a shorter input has fewer windows and
             its profile is 0 past its end, where nothing was occluded). Zeiler &
             Fergus (2014).
Randomness depends only on the generator and on sample ids, never on which other samples are
in the batch: the rows of a subset equal the same rows of the full run.
"""

from __future__ import annotations

import numpy as np

from probes.engine.forward import chunk_width, compiled_forward, layout, place, run_chunk
from probes.engine.onehot_path import coded_inputs, gathered_layers
from probes.model import data as pdata
from probes.model.encoded import of_view
from probes.model.graph import readable, structure
from probes.model.lazy import coded_width
from probes.model.losses import head_losses, sample_losses
from probes.results.result import ProbeResult

MODES = ("shuffle", "zero", "mean", "noise", "occlusion")
FLOAT_ONLY = ("mean", "noise")
CODED = ("shuffle", "zero", "occlusion")  # modes whose ablated one-hot rows are codes too


def ablate(model, inputs, *, rng: np.random.Generator, mode: str = "shuffle", labels=None,
           permutations: int = 8, window: int | None = None, noise_scale: float = 1.0,
           background=None, sample_ids=None, batch_size: int = 256, seed: int | None = None,
           model_name: str | None = None) -> ProbeResult:
    """Ablation effects of every input on every head.

    Args:
        model: a functional Keras model.
        inputs: {input name: (N, ...) array} or a list in model order; arrays or lazy
            inputs (probes.model.lazy), read one chunk of rows at a time.
        rng: source of the permutations and noise.
        mode: one of MODES.
        labels: optional {head name: (N,) or (N, C)} for loss effects.
        permutations: draws per input for shuffle and noise.
        window: occlusion window length in steps (default: the longest axis-1 length / 14,
            rounded up).
        noise_scale: noise std in units of the input's own std.
        background: samples that donors and means come from (default: `inputs`).
        sample_ids: (N,) row of each sample in `background` (default: 0..N-1).
        batch_size: rows per forward pass; bounds memory.
        seed: the seed `rng` came from, recorded in the result.
        model_name: identity recorded in the result.
    Returns:
        A ProbeResult with effects (H, I, N) = |change of each head's output| (summed over
        output units, averaged over draws: for a softmax head, twice the total variation
        distance between the two predicted distributions), and for occlusion a profile
        (H, I, N, W).
    """
    if mode not in MODES:
        raise ValueError(f"Expected a mode in {list(MODES)}; received {mode!r}")
    names = pdata.input_names(model)
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    n = xs[0].shape[0]
    bg = xs if background is None else pdata.canonical_inputs(model, background, "background")
    ids = pdata.canonical_sample_ids(sample_ids, n, len(bg[0]))
    enc = of_view(model)  # inputs the model encodes itself: probed from their encoding
    cut = enc.cut if enc is not None else {}
    for i, (name, x) in enumerate(zip(names, xs)):
        if i in cut and (mode in FLOAT_ONLY or mode == "occlusion" and x.dtype.kind == "f"):
            what = "token ids" if mode == "occlusion" else "numbers"
            others = "shuffle or zero" + (" or occlusion" if x.dtype.kind in "iu" else "")
            raise ValueError(f"Expected {what} for {mode} ablation; received input {name!r}, "
                             f"which the model encodes ({', '.join(enc.layers[i])}): use "
                             f"{others}")
        if mode in FLOAT_ONLY and x.dtype.kind in "iu":
            raise ValueError(f"Expected a float input for {mode} ablation; received "
                             f"{x.dtype} input {name!r} (use shuffle, zero or occlusion)")
        if mode == "occlusion" and x.ndim < 2:
            raise ValueError(f"Expected an input with a time axis for occlusion; received "
                             f"{name!r} of shape {x.shape}")
    if mode == "occlusion":
        longest = max(x.shape[1] for x in xs)
        if window is not None and not 1 <= int(window) <= longest:
            raise ValueError(f"Expected an occlusion window in [1, {longest}]; received "
                             f"{window}")
        window = int(window) if window else -(-longest // 14)
    if int(permutations) < 1 or int(batch_size) < 1:
        raise ValueError(f"Expected permutations and batch_size >= 1; received "
                         f"{permutations}, {batch_size}")
    ys = pdata.canonical_labels(model, labels, n) if labels is not None else None
    # Lazy one-hot inputs travel as codes and are encoded in the graph (see compiled_forward)
    # when the mode's ablated values are codes too: shuffled rows, or PAD for zeros; so do
    # one-hot arrays that feed layers run from gathered kernel rows (probes.engine.onehot_path).
    if mode in CODED:
        xs, bg = coded_inputs(model, xs, bg)
    encoded = tuple(coded_width(x) if mode in CODED and coded_width(b) == coded_width(x)
                    else None for x, b in zip(xs, bg))
    empty = [enc.empty[i] if i in cut else x.empty_code if w else 0
             for i, (x, w) in enumerate(zip(xs, encoded))]
    xs = [x.codes if w else x for x, w in zip(xs, encoded)]
    plans = [_plan(mode, x, b.codes if w else b, ids, rng, permutations, window, noise_scale,
                   empty=e) for x, b, w, e in zip(xs, bg, encoded, empty)]
    heads = pdata.output_names(model)
    # The passes of a run over the whole background: a subset's rows equal the full run's.
    total = n if sample_ids is None else len(bg[0])
    effects, loss_effects, profile = _ablate(compiled_forward(model, encoded), xs, plans, ys,
                                             batch_size, heads, head_losses(model),
                                             ids=ids, total=total)
    params = {"mode": mode, "seed": seed, "batch_size": int(batch_size),
              "one_hot": gathered_layers(model, names, encoded)}
    if not readable(model):
        params["graph"] = False  # a subclassed model: no structural zeros can be claimed
    if cut:
        params["encoded_inputs"] = {names[i]: list(enc.layers[i]) for i in cut}
    if mode in ("shuffle", "noise"):
        params["permutations"] = int(permutations)
    if mode == "noise":
        params["noise_scale"] = float(noise_scale)
    starts = None
    if mode == "occlusion":
        params["window"] = window
        starts = np.arange(0, max(x.shape[1] for x in xs), window)
    return ProbeResult(probe="ablation", method=mode, model=model_name or model.name,
                       heads=heads, inputs=names, effects=effects,
                       structural=structure(model).reach, sample_ids=ids, params=params,
                       loss_effects=loss_effects, profile=profile, profile_starts=starts)


class _Plan:
    """How to build the ablated versions of one input for rows [start, stop).

    `variant(k, rows, x)` returns draw k of the ablated input for those rows.
    """

    def __init__(self, count, variant, window=None):
        self.count, self.variant, self.window = count, variant, window


def _plan(mode, x, bg, ids, rng, permutations, window, noise_scale, empty=0) -> _Plan:
    """Args: empty is the value of an ablated element: 0, the empty code of coded one-hot
    inputs, or a row (the encoding of an empty value: probes.model.encoded.empty_rows)."""
    if mode == "shuffle":
        m = len(bg)
        if m < 2:
            raise ValueError(f"Expected at least 2 background samples to shuffle; received {m}")
        # Draw k pairs sample id j with donor sigma[(pos(j) + 1) % m]: a random cyclic
        # derangement, so no sample is its own donor and donors depend on ids only.
        sigmas = [rng.permutation(m) for _ in range(permutations)]
        donors = np.stack([s[(np.argsort(s)[ids] + 1) % m] for s in sigmas])  # (K, N)
        return _Plan(permutations, lambda k, rows, xr: bg[donors[k, rows]])
    if mode == "zero":
        return _Plan(1, lambda k, rows, xr: np.broadcast_to(np.asarray(empty, xr.dtype),
                                                            xr.shape).copy())
    if mode == "mean":
        mean = bg.mean(axis=0, dtype=np.float64).astype(x.dtype)
        return _Plan(1, lambda k, rows, xr: np.broadcast_to(mean, xr.shape))
    if mode == "noise":
        scale = noise_scale * float(bg.std(dtype=np.float64))
        draws = rng.standard_normal((permutations,) + x.shape[1:]) * scale  # (K, ...)
        return _Plan(permutations, lambda k, rows, xr: (xr + draws[k]).astype(x.dtype))
    steps = x.shape[1]
    w = int(window)  # checked against the longest input by `ablate`

    def occlude(k, rows, xr):
        out = xr.copy()
        out[:, k * w:(k + 1) * w] = empty if np.ndim(empty) == 0 else empty[k * w:(k + 1) * w]
        return out

    return _Plan(-(-steps // w), occlude, window=w)


def _ablate(forward, xs, plans, ys, batch_size, heads, losses=(), ids=None, total=None):
    """Effects (H, I, N), loss effects (H, I, N) or None, occlusion profile or None.

    The ablated copies (input i, draw k) of a chunk of samples are packed side by side into
    passes of P copies and at most `batch_size` rows, so 64 samples with 16 copies take 4
    passes of 256 rows, not 16 of 64. The unablated chunk runs once as a pass of the same
    shape (P copies of itself), and copy c is compared with block c of it: a head that cannot
    see input i gets bit-identical values at bit-identical positions, hence exactly 0.0.
    Inputs are read only as row slices and index arrays of one chunk at a time, so a lazy
    input (probes.model.lazy) is encoded chunk by chunk: memory is bounded by `batch_size`.
    Samples `ids` of `total` (default: all of them) go in the passes of forward.layout, so a
    subset's rows equal the full run's bit for bit.
    """
    n = xs[0].shape[0]
    n_in, h = len(xs), len(heads)
    if ids is None:
        ids, total = np.arange(n), n
    width = chunk_width(total, batch_size)
    copies = [(i, k) for i, plan in enumerate(plans) for k in range(plan.count)]
    passes = -(-len(copies) // max(1, batch_size // width))
    per_pass = -(-len(copies) // passes)  # near-equal packs: little padding in the last
    effects = np.zeros((h, n_in, n))
    loss_fx = np.zeros((h, n_in, n)) if ys is not None else None
    windows = max(plan.count for plan in plans)
    profile = np.zeros((h, n_in, n, windows)) if plans[0].window is not None else None
    for p in layout(ids, total, batch_size):
        start, stop = p.start, p.stop
        rows = np.arange(start, stop)
        chunk = [np.asarray(x[start:stop]) for x in xs]
        base = _finite(_packed(forward, chunk, [None] * per_pass, plans, rows, p),
                       heads, start)  # per_pass x H x (b, C)
        base_loss = _losses(base[0], ys, rows, losses) if ys is not None else None
        firsts = np.cumsum([0] + [o.shape[1] for o in base[0][:-1]])  # first unit per head
        for first in range(0, len(copies), per_pass):
            pack = copies[first:first + per_pass]
            outs = _finite(_packed(forward, chunk, pack + [None] * (per_pass - len(pack)),
                                   plans, rows, p), heads, start)
            for c, (i, k) in enumerate(pack):
                # Every head at once: |change| summed over each head's own output units.
                diff = np.abs(np.concatenate(outs[c], axis=1) - np.concatenate(base[c], axis=1))
                moved = np.add.reduceat(diff, firsts, axis=1).T  # (H, b)
                if profile is not None:
                    profile[:, i, start:stop, k] = moved
                    effects[:, i, start:stop] += moved  # occlusion: the sum over windows
                else:
                    effects[:, i, start:stop] += moved / plans[i].count
                if ys is not None:
                    loss_fx[:, i, start:stop] += ((_losses(outs[c], ys, rows, losses) - base_loss)
                                                  / plans[i].count)
    return effects, loss_fx, profile


def _packed(forward, chunk, pack, plans, rows, p):
    """One pass over the copies in `pack` ((i, k) or None for unablated), each a block of
    `p.width` rows with the chunk's b rows at `p.offset` (forward.place); returns per copy the
    H x (b, C) outputs of its b real rows."""
    b, width = len(rows), p.width
    blocks = [[place(plans[c[0]].variant(c[1], rows, x) if c and c[0] == j else x, p)
               for c in pack] for j, x in enumerate(chunk)]
    outs = run_chunk(forward, [np.concatenate(blk) for blk in blocks], len(pack) * width)
    at = p.offset
    return [[o[c * width + at:c * width + at + b] for o in outs] for c in range(len(pack))]


def _finite(copies, heads, start):
    """The outputs (per copy, per head), if finite: a NaN would make every effect and
    verdict silently wrong."""
    for outs in copies:
        for head, o in zip(heads, outs):
            if not np.all(np.isfinite(o)):
                row = start + int(np.flatnonzero(~np.isfinite(o).all(axis=1))[0])
                raise ValueError(f"Expected finite outputs from head {head!r}; received NaN "
                                 f"or inf (first at sample {row}, original or ablated)")
    return copies


def _losses(outs, ys, rows, losses) -> np.ndarray:
    """(H, b) per-sample loss of every head on rows `rows` of its labels, under the one rule
    of probes.model.losses (`losses`: per head its HeadLoss, decided from the model)."""
    return sample_losses(outs, [y[rows] for y in ys], losses)
