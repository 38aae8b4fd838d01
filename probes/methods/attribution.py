"""Gradient attribution probes, reduced per (head, input, sample) into the ProbeResult.

Methods:
  saliency              |d head / d x| (Simonyan et al., 2014)
  input_x_gradient      |x * d head / d x| (Shrikumar et al., 2016)
  integrated_gradients  (x - x') * mean over the path of d head / d x (Sundararajan et al.,
                        2017); Gauss-Legendre nodes by default (or Riemann midpoints or
                        trapezoid), steps doubled until the median relative completeness gap
                        is under `tolerance`
  smoothgrad            |mean over noisy copies of d head / d x| (Smilkov et al., 2017)
Each sample's score for an input is the sum of |attribution| over that input's elements (and,
for integrated gradients, also the signed sum). Heads are attributed in logit space by default
(the pre-activation of a sigmoid or softmax output layer, read from a copy of that layer: the
model is never changed): the sigmoid saturates and hides dependencies.

What is attributed for a head with several units (`target`): one unit per sample, by default
the unit the model predicts for that sample (its largest output); or a fixed unit index; or
"all", one score row per unit, named "head[unit]". Heads with more than one output axis
(sequence outputs) are refused: reduce them in the model, or use ablation.

A gradient is evidence only where it exists: a head that the graph links to an input but whose
gradient does not reach it (a cast, argmax, rounding, a lookup) is an error naming the layer,
and a cell whose attributions are all exactly 0 while the head's output moves when that input
is zeroed (saturated units) is marked unreliable (see probes.results.stats), never `zero`.
"""

from __future__ import annotations

import numpy as np

from probes.engine.forward import compiled_forward, layout, place, run_all
from probes.engine.gradients import QUADRATURES, Plan, evaluate_paths, points_forward
from probes.engine.gradients import quadrature as quadrature_nodes
from probes.engine.onehot_grads import path_or_onehot
from probes.methods.attribution_checks import check_connected, unreliable_cells
from probes.methods.baselines import Constant, Difference, Rows, baseline_arrays
from probes.model import data as pdata
from probes.model.encoded import of_view
from probes.model.graph import heads as model_heads, readable, structure
from probes.model.graphrun import has_masks, logit_heads
from probes.model.tokens import embed, token_plan
from probes.results.result import ProbeResult

METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
SPACES = ("logit", "probability")
TARGETS = ("predicted", "all")  # or a unit index


def attribute(model, inputs, *, rng: np.random.Generator,
              method: str = "integrated_gradients", space: str = "logit",
              baseline="zero", steps: int | None = None, quadrature: str = "gauss_legendre",
              noise_samples: int = 16, noise_scale: float = 0.15, tolerance: float = 0.01,
              max_steps: int = 512, background=None, batch_size: int = 256,
              seed: int | None = None, sample_ids=None, model_name: str | None = None,
              target="predicted", labels=None, maps: bool = False,
              one_hot_path: bool = True) -> ProbeResult:
    """Gradient attributions of every head to every input.

    Args:
        model: a functional Keras model. Token inputs (found from the graph, any dtype) are
            attributed at their Embedding call site's output (see probes.model.tokens).
        inputs: {input name: (N, ...) array} or a list in model order.
        rng: source of the smoothgrad noise and the shuffle baseline's permutation.
        method: one of METHODS.
        space: "logit" (pre-activation of sigmoid/softmax heads) or "probability".
        baseline: integrated gradients' x': "zero", "mean" (over the background), "shuffle"
            (each sample's own time steps in one random order that moves every step), or
            {input name: array} of
            one sample's shape or of the inputs' shape (token ids for token inputs).
        steps: integrated gradients' path nodes; None doubles from 8 up to `max_steps` until
            the median relative completeness gap is below `tolerance`.
        quadrature: the path integral's nodes: "gauss_legendre", "riemann" (midpoints) or
            "trapezoid".
        noise_samples, noise_scale: smoothgrad's copies and noise std as a fraction of the
            input's range over the background.
        batch_size: rows per gradient pass (samples x steps); bounds memory.
        target: the unit of a multi-unit head that is attributed: "predicted" (per sample, the
            unit with the largest output), a unit index, or "all" (one row per unit, named
            "head[unit]"). Single-unit heads always attribute their one unit.
        labels: accepted for the registry's one signature; gradients of the heads' outputs
            need none.
        maps: also keep the signed attribution per element: per input (H, N, T) summed over
            the feature axis for inputs with 3 or more axes (a one-hot or embedded token's
            attribution, one value per time step), or (H, N, D) whole for (N, D) inputs.
        one_hot_path: attribute one-hot inputs of Dense/LSTM/GRU/SimpleRNN layers from
            gathered kernel rows (probes.engine.onehot_grads; the same numbers to float32 rounding);
            params["one_hot"] names them, and the notes say why others stay dense.
    Returns:
        A ProbeResult with effects (H, I, N) = sum |attribution| (H: a row per head, or per
        unit with target "all"), a profile (H, I, N, T) of
        sum |attribution| per time step when the inputs share a time axis; for integrated
        gradients also `signed` (H, I, N) and `completeness_gap` (H, N), relative; with
        `maps`, `maps` (one array per input).
    """
    _check_options(method, space, quadrature, steps, target)
    names = pdata.input_names(model)
    pairs = model_heads(model)
    for head, tensor in pairs:
        if len(tensor.shape) > 2:
            raise ValueError(f"Expected heads with one output axis (batch, units) for "
                             f"attribution; received head {head!r} of shape "
                             f"{tuple(tensor.shape)}: reduce it in the model, or use probe "
                             "ablate")
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    originals = list(xs)
    n = xs[0].shape[0]
    bg = xs if background is None else pdata.canonical_inputs(model, background, "background")
    ids = pdata.canonical_sample_ids(sample_ids, n, len(bg[0]))
    # Passes laid out as in a run over the whole background: a subset's rows (a shard's)
    # equal the full run's bit for bit (probes.engine.forward.layout).
    where = (ids, n if sample_ids is None else len(bg[0]))
    tok = token_plan(model, names)
    row_heads, row_names, selectors = _targets(model, pairs, xs, target, batch_size, where)
    base = None
    if method == "integrated_gradients":
        base = baseline_arrays(baseline, xs, bg, rng, names)
    tokens = [np.asarray(xs[i]) if i in tok.layers else None for i in range(len(xs))]
    for i, layer in tok.layers.items():  # token ids -> embedding vectors
        xs[i] = embed(layer, xs[i])
        bg[i] = xs[i] if bg is xs else embed(layer, bg[i])
        if base is not None:
            base[i] = (np.zeros_like(xs[i]) if isinstance(baseline, str) and baseline == "zero"
                       else embed(layer, base[i]) if base[i].dtype.kind in "iu" else base[i])
    if isinstance(baseline, str) and baseline == "mean" and base is not None:
        base = baseline_arrays("mean", xs, bg, rng, names)  # the mean in embedding space
    xs = [x if x.dtype == np.float32 else x.astype(np.float32) for x in xs]
    squashed = logit_heads(model) if space == "logit" else {}
    plan = Plan(tok.sites, tuple(row_heads), frozenset(id(layer) for layer in squashed.values()),
                masks=has_masks(model))
    params = {"method": method, "space": space, "seed": seed, "batch_size": int(batch_size),
              "target": target if isinstance(target, str) else int(target),
              "maps": bool(maps),
              "embedded_inputs": {names[i]: layer.name for i, layer in tok.layers.items()},
              "notes": list(tok.notes), "logit_heads": list(squashed)}
    times = {x.shape[1] if x.ndim >= 3 else None for x in xs}
    with_profile = len(times) == 1 and None not in times
    fn, route = path_or_onehot(model, plan, names, method, xs, base, baseline, tok.layers,
                               with_profile, bool(maps), enabled=one_hot_path)
    params.update(one_hot=route.used, notes=params["notes"] + list(route.notes))
    if not readable(model):
        params["graph"] = False  # a subclassed model: no structural zeros can be claimed
    enc = of_view(model)
    if enc is not None:  # attributed at the encoding the model's preprocessing made
        params["encoded_inputs"] = {names[i]: list(enc.layers[i]) for i in enc.cut}
    gaps = None
    if method == "integrated_gradients":
        params["baseline"] = baseline if isinstance(baseline, str) else "array"
        red, gaps, used = _integrated(model, plan, fn, xs, base, tokens, selectors, steps,
                                      quadrature, tolerance, max_steps, batch_size, with_profile,
                                      where)
        params.update(steps=used, quadrature=quadrature, tolerance=tolerance,
                      median_gap=float(np.median(gaps)),
                      converged=bool(np.median(gaps) < tolerance),
                      samples_over_5pct=int(np.sum(gaps > 0.05)))
    else:
        red = _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size,
                     with_profile, tokens, selectors, where)
        if method == "smoothgrad":
            params.update(noise_samples=int(noise_samples), noise_scale=float(noise_scale))
    reach = structure(model).reach[list(row_heads)]  # (R, I)
    check_connected(model, fn.disconnected, reach, row_names, names, row_heads)
    params["unreliable"] = unreliable_cells(model, originals, red.abs_sum, reach, row_heads,
                                            row_names, names, batch_size)
    return ProbeResult(probe="attribution", method=method, model=model_name or model.name,
                       heads=tuple(row_names), inputs=names, effects=red.abs_sum,
                       structural=reach, sample_ids=ids, params=params,
                       profile=red.profile,
                       profile_starts=np.arange(xs[0].shape[1]) if with_profile else None,
                       signed=red.signed_sum if method == "integrated_gradients" else None,
                       completeness_gap=gaps, maps=red.maps)


def _check_options(method, space, quadrature, steps, target):
    if method not in METHODS:
        raise ValueError(f"Expected a method in {list(METHODS)}; received {method!r}")
    if space not in SPACES:
        raise ValueError(f"Expected a space in {list(SPACES)}; received {space!r}")
    if quadrature not in QUADRATURES:
        raise ValueError(f"Expected a quadrature in {list(QUADRATURES)}; "
                         f"received {quadrature!r}")
    if steps is not None and not 1 <= int(steps) <= 100000:
        raise ValueError(f"Expected steps in [1, 100000]; received {steps}")
    if not (target in TARGETS or (isinstance(target, (int, np.integer))
                                  and not isinstance(target, bool) and target >= 0)):
        raise ValueError(f"Expected a target in {list(TARGETS)} or a unit index >= 0; "
                         f"received {target!r}")


def _targets(model, pairs, xs, target, batch_size, where):
    """Score rows: (head index per row, row names, per row (N, C) float32 unit weights)."""
    n = xs[0].shape[0]
    units = [int(np.prod(tensor.shape[1:])) for _, tensor in pairs]
    predicted = None
    if target == "predicted" and any(c > 1 for c in units):
        outs = run_all(compiled_forward(model), xs, batch_size, *where)  # H x (N, C)
        predicted = [o.argmax(axis=1) for o in outs]
    row_heads, row_names, selectors = [], [], []
    for h, ((head, _), c) in enumerate(zip(pairs, units)):
        if c == 1:
            picks = [(head, np.zeros(n, int))]
        elif target == "all":
            picks = [(f"{head}[{u}]", np.full(n, u)) for u in range(c)]
        elif target == "predicted":
            picks = [(head, predicted[h])]
        elif target >= c:
            raise ValueError(f"Expected a target unit below {c}, the units of head {head!r}; "
                             f"received {target}")
        else:
            picks = [(head, np.full(n, int(target)))]
        for name, unit in picks:
            row_heads.append(h)
            row_names.append(name)
            selectors.append(np.eye(c, dtype=np.float32)[unit])  # (N, C) one-hot
    return row_heads, row_names, selectors


def _local(fn, method, xs, bg, rng, noise_samples, noise_scale, batch_size, with_profile,
           tokens, selectors, where):
    """saliency, input_x_gradient, smoothgrad: the gradient at x (averaged over noise)."""
    zeros = [np.zeros((1,) + x.shape[1:], np.float32) for x in xs]
    ones = [Constant(1.0, x.shape) for x in xs]
    if method == "smoothgrad":
        sigma = [noise_scale * float(b.max() - b.min()) for b in bg]
        extras = [(rng.standard_normal((noise_samples,) + x.shape[1:]) * s).astype(np.float32)
                  for x, s in zip(xs, sigma)]  # (K, ...) the same for every sample
        k = noise_samples
    else:
        extras, k = zeros, 1
    factors = xs if method == "input_x_gradient" else ones
    return evaluate_paths(fn, xs, [Constant(0.0, x.shape) for x in xs], extras,
                          np.zeros(k), np.full(k, 1.0 / k), factors, batch_size, with_profile,
                          tokens, selectors, *where)


PILOT = 16  # samples that choose the automatic step count before the full run


def _integrated(model, plan, fn, xs, base, tokens, selectors, steps, quadrature, tolerance,
                max_steps, batch_size, with_profile, where):
    """Integrated gradients with automatic steps -> (Reduced, gaps (H, N), steps used).

    Automatic steps: double from 8 on the first PILOT samples until their median relative gap
    is under `tolerance`, then run every sample with that count (doubling again if the median
    over all samples is still above it). Every count tried is a complete rerun of the nodes.
    Doubling stops early when two doublings did not halve the median gap; the result then
    reports the gap reached (params["median_gap"]) and the caller flags it.
    """
    forward = points_forward(model, plan)
    originals = xs if plan.masks else []  # masks from the sample, at both ends
    delta = (_scores(forward, xs, tokens, selectors, originals, batch_size, where)
             - _scores(forward, base, tokens, selectors, originals, batch_size, where))

    def run(s, rows):
        sub = [Rows(x, rows) for x in xs]
        b = [Rows(x, rows) for x in base]
        deltas = [Difference(x, x0) for x, x0 in zip(sub, b)]
        extras = [np.zeros((1,) + x.shape[1:], np.float32) for x in xs]
        alphas, weights = quadrature_nodes(quadrature, s)
        red = evaluate_paths(fn, b, deltas, extras, alphas, weights, deltas, batch_size,
                             with_profile, [None if t is None else Rows(t, rows)
                                            for t in tokens],
                             [Rows(sel, rows) for sel in selectors], where[0][rows], where[1])
        d = delta[:, rows]
        # Relative gap; differences below 1e-6 (float32 noise of the outputs) are not divided.
        gaps = np.abs(red.signed_sum.sum(axis=1) - d) / np.maximum(np.abs(d), 1e-6)
        return red, gaps

    n = xs[0].shape[0]
    everything = slice(0, n)
    if steps:
        red, gaps = run(int(steps), everything)
        return red, gaps, int(steps)
    s = 8
    if n > PILOT:
        history = []
        while s < max_steps:
            history.append(np.median(run(s, slice(0, PILOT))[1]))
            if history[-1] < tolerance or _stalled(history):
                break
            s *= 2
    history = []
    while True:
        red, gaps = run(s, everything)
        history.append(np.median(gaps))
        if history[-1] < tolerance or s >= max_steps or _stalled(history):
            return red, gaps, s
        s *= 2


def _stalled(medians) -> bool:
    """True when two doublings in a row did not halve the median gap: the path integral is
    not converging (a path through sharp features), so more steps would only cost time."""
    return len(medians) >= 3 and medians[-1] > 0.5 * medians[-3]


def _scores(forward, points, tokens, selectors, originals, batch_size, where) -> np.ndarray:
    """(R, N) each score row at the points (token inputs: embedding-space points, their ids
    in `tokens`; masks from `originals`), in the passes of probes.engine.forward.layout for the
    samples `where` = (ids, total)."""
    out = []
    for p in layout(*where, batch_size):
        def cut(arrays, dtype, p=p):
            b = p.stop - p.start
            return [place(np.broadcast_to(x.row, (b,) + x.row.shape[1:])
                          if hasattr(x, "row") else np.asarray(x[p.start:p.stop], dtype), p)
                    for x in arrays]

        ids = [np.zeros((0,), np.int32) if t is None else cut([t], np.int32)[0] for t in tokens]
        scores = forward(cut(points, np.float32), ids, cut(selectors, np.float32),
                         cut(originals, np.float32))
        out.append(np.asarray(scores, np.float64)[:, p.offset:p.offset + p.stop - p.start])
    return np.concatenate(out, axis=1)
