"""Gradient attributions of one-hot inputs at their projection x @ kernel
(probes.engine.onehot_path).

A drop-in for probes.engine.gradients.PathFunction (same arguments, same Reduced outputs) where some
inputs are routed through gathered kernel rows. For such an input with call sites s (kernels
W_s (F, G_s)), the path point p = start + alpha * delta + extra enters the model only as
P_s = p @ W_s = start @ W_s + alpha * delta @ W_s + extra @ W_s, and each of start and delta is
onehot(plus) - onehot(minus) + row (codes: gathered rows; a row shared by every sample, such
as the mean baseline: one (T, F) @ (F, G) product per pass). The graph is run from the P_s
(their call sites replaced, probes.model.graphrun) and the tape watches them; a recurrent layer that
probes.engine.recurrent_grads covers is watched at its output instead, and one written-out backward
loop takes every score row to its P_s. The averaged gradient
gbar_s = sum_k w_k d score / d P_s,k (b, T, G) gives the input's averaged gradient
sum_s gbar_s @ W_s^T, linear, so it is formed once per sample, not per path node. A one-hot
factor (input_x_gradient's x; integrated gradients' x - x' for the zero and shuffle baselines)
is nonzero only at its codes: the attribution there is W_s[c] . gbar_s, and no (b, T, F)
tensor is formed; a dense factor (x - mean, smoothgrad's ones) multiplies sum_s gbar_s @ W_s^T.
The reductions are the dense path's: sum of |attribution| per element (x - x' of a shuffle
step has two active features, each counted), signed sum, per step sums for profile and maps.

The host splits each chunk's start, delta and factor into codes and rows (exactly: the chunk
must be what the dense path would multiply, else RuntimeError), so the callers' chunking,
padding and layouts are unchanged.
"""

from __future__ import annotations

import numpy as np

from probes.engine.onehot_path import EMPTY, one_hot_codes


def path_or_onehot(model, plan, names, method, xs, base, baseline, tokens, with_profile: bool,
                   with_maps: bool, enabled: bool = True):
    """(path function, probes.engine.onehot_path.Route) for `attribute`: OneHotPaths when some
    input takes the one-hot path, else probes.engine.gradients.path_function's PathFunction.

    Args:
        names, xs, base, baseline: the inputs' names, samples and integrated gradients'
            baselines (None for the other methods); tokens: the token inputs' indices.
        enabled: False keeps every input on the dense path.
    """
    from probes.engine.gradients import path_function
    from probes.engine.onehot_path import route

    chosen = route(model, names, method, xs, base, baseline, tokens, plan.masks, enabled)
    if not chosen.sites:
        return path_function(model, plan, with_profile, purpose=method,
                             with_maps=with_maps), chosen
    return onehot_function(model, plan, chosen.sites, with_profile, purpose=method,
                           with_maps=with_maps), chosen


def onehot_function(model, plan, sites: dict, with_profile: bool, purpose: str = "",
                    with_maps: bool = False):
    """The cached OneHotPaths of a model, plan and routed inputs (see the module docstring);
    called like probes.engine.gradients.path_function's PathFunction."""
    from probes.engine.forward import cached

    key = tuple((i, tuple((id(layer), index) for layer, index in s))
                for i, s in sorted(sites.items()))
    return cached(model, ("onehot_paths", plan, key, with_profile, purpose, with_maps),
                  lambda: OneHotPaths(model, plan, sites, with_profile, with_maps))


class OneHotPaths:
    """The compiled one-hot path function; `disconnected` holds the (score row, input) pairs
    without a gradient, as PathFunction's does."""

    def __init__(self, model, plan, sites: dict, with_profile: bool, with_maps: bool):
        self.disconnected: set[tuple[int, int]] = set()
        self.with_maps, self.sites = with_maps, sites
        self.run = _compile(model, plan, sites, with_profile, self.disconnected, with_maps)

    def __call__(self, starts, deltas, extras, alphas, weights, factors, tokens, selectors):
        """PathFunction's arguments (per input (b, ...) chunks or (1, ...) rows); returns
        Reduced tensors (abs_sum, signed_sum, profile, maps)."""
        parts, dense = [], []
        for i, (s, d, f) in enumerate(zip(starts, deltas, factors)):
            if i not in self.sites:
                parts.append((s, d, f))
                dense.append(False)
                continue
            start = _start(np.asarray(s, np.float32))
            delta = _delta(np.asarray(d, np.float32), np.asarray(s, np.float32), start)
            factor = delta if factors is deltas else _factor(np.asarray(f, np.float32))
            parts.append(start + delta + factor)
            dense.append(bool(np.any(factor[2])))
        from probes.engine import devices

        # Split by sample rows across the devices of probes.engine.devices.use, if any.
        return devices.run(self.run, (parts, extras, alphas, weights, tokens, selectors,
                                      tuple(dense)),
                           split=(True, False, False, False, True, True, False),
                           axes=(2, 2, 2, 1))


def _none(t: int) -> np.ndarray:
    """(1, T) codes of no row at all (a term that is absent)."""
    return np.full((1, t), EMPTY, np.int32)


def _start(s: np.ndarray, what: str = "start") -> tuple:
    """(codes (b, T), row (1, T, F)): a one-hot start, or one row shared by every sample."""
    codes = one_hot_codes(s)
    if codes is not None:
        return codes, np.zeros((1,) + s.shape[1:], np.float32)
    if s.shape[0] == 1 or np.array_equal(s, np.broadcast_to(s[:1], s.shape)):
        return _none(s.shape[1]), np.ascontiguousarray(s[:1])
    raise RuntimeError(f"Expected a one-hot path {what} that is one-hot or one shared row; "
                       "received neither (a routing bug)")


def _delta(d: np.ndarray, s: np.ndarray, start: tuple) -> tuple:
    """(plus, minus (b, T), row (1, T, F)) with d = onehot(plus) - onehot(minus) + row: the
    sample x = start + d is one-hot, so d = onehot(x) - start."""
    t = d.shape[1]
    if not np.any(d):
        return _none(t), _none(t), np.zeros((1,) + d.shape[1:], np.float32)
    end = np.rint(s + d).astype(np.float32)  # the sample, within one rounding of s + d
    plus = one_hot_codes(end)
    if plus is None or not np.array_equal(d, np.broadcast_to(end - s, d.shape)):
        raise RuntimeError("Expected a one-hot path delta equal to a one-hot sample minus the "
                           "start; received another array (a routing bug)")
    minus = np.broadcast_to(start[0], plus.shape).copy()
    same = plus == minus  # x - x' is exactly 0 there
    plus[same], minus[same] = EMPTY, EMPTY
    return plus, minus, -start[1]


def _factor(f: np.ndarray) -> tuple:
    """(plus, minus, row) of a factor: one-hot (codes) or one shared row (dense)."""
    codes, row = _start(f, "factor")
    return codes, _none(f.shape[1]), row


def _compile(model, plan, sites, with_profile, disconnected, with_maps):
    """The tf.function behind OneHotPaths (see the module docstring)."""
    import tensorflow as tf

    from probes.engine import recurrent_grads
    from probes.engine.gradients import graph_outputs
    from probes.engine.onehot_path import gather_rows
    from probes.engine.projected import kernel, run as run_projected

    def project(x, w):  # (n, T, F) @ (F, G) -> (n, T, G)
        return tf.tensordot(x, w, axes=[[2], [0]])

    def points(part, w, extras, alphas, b, k):
        """(b * K, T, G) = start @ W + alpha * delta @ W + extra @ W at every node."""
        s_codes, s_row, d_plus, d_minus, d_row = part[:5]
        start = gather_rows(w, s_codes) + project(s_row, w)  # (b | 1, T, G)
        delta = gather_rows(w, d_plus) - gather_rows(w, d_minus) + project(d_row, w)
        p = (start[:, None] + alphas[None, :, None, None] * delta[:, None]
             + project(extras, w)[None])  # (b, K, T, G)
        return tf.reshape(p, tf.concat([[b * k], tf.shape(p)[2:]], 0))

    @tf.function(reduce_retracing=True, autograph=False)  # see gradients._compile_paths
    def run(parts, extras, alphas, weights, tokens, selectors, dense):
        k = tf.shape(alphas)[0]
        feeds, watched, replaced, shapes, manual = [], [], {}, [], {}
        for i, part in enumerate(parts):
            if i not in sites:  # the dense path's points
                s, d, _ = part
                b = tf.maximum(tf.shape(s)[0], tf.shape(d)[0])
                rest = tf.shape(s)[1:]
                bcast = tf.concat([[1, k], tf.ones_like(rest)], 0)
                p = s[:, None] + tf.reshape(alphas, bcast) * d[:, None] + extras[i][None]
                feeds.append(tf.reshape(p, tf.concat([[b * k], rest], 0)))  # (b * K, ...)
                watched.append([feeds[-1]])
                shapes.append(tf.concat([[b, k], rest], 0))
                continue
            b = tf.reduce_max([tf.shape(part[0])[0], tf.shape(part[2])[0]])
            group = []
            for layer, index in sites[i]:
                p = points(part, tf.convert_to_tensor(kernel(layer)), extras[i], alphas, b, k)
                if recurrent_grads.supported(layer):  # watched at its output
                    out, saved = recurrent_grads.forward(layer, p)
                    manual[(i, len(group))] = (layer, saved)
                    group.append(out)
                    replaced[(id(layer), index)] = lambda op, *a, out=out, **kw: out
                else:  # watched at the projection, autodiff through the layer
                    group.append(p)
                    replaced[(id(layer), index)] = (
                        lambda op, *a, p=p, **kw: run_projected(op, p))
            feeds.append(tf.zeros([0]))  # read by no call site: all are replaced
            watched.append(group)
            shapes.append(tf.stack([b, k, tf.shape(part[0])[1]]))
        flat = [p for group in watched for p in group]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(flat)
            outs = graph_outputs(model, plan, feeds, tokens, k, None, replaced=replaced)
            totals = [tf.reduce_sum(tf.reshape(outs[h], [tf.shape(outs[h])[0], -1])
                                    * tf.repeat(sel, k, axis=0))
                      for h, sel in zip(plan.rows, selectors)]
        grads = []  # per score row, per input, per watched tensor
        for total in totals:
            flat_grads = iter(tape.gradient(total, flat))
            grads.append([[next(flat_grads) for _ in group] for group in watched])
        del tape
        gbars = _averaged(grads, parts, watched, shapes, manual, weights, k, tf)
        abs_sums, signed_sums, profiles = [], [], []
        maps = [[] for _ in parts]
        for r, row_grads in enumerate(grads):
            row = [[], [], []]
            for i, (part, shape) in enumerate(zip(parts, shapes)):
                if all(g is None for g in row_grads[i]):
                    disconnected.add((r, i))
                if i in sites:
                    a_abs, a_signed = _onehot_attr(part, gbars[r][i], dense[i])  # (b, T)
                    row[0].append(tf.reduce_sum(a_abs, axis=1))
                    row[1].append(tf.reduce_sum(a_signed, axis=1))
                    row[2].append(a_abs)
                    maps[i].append(a_signed)
                    continue
                s, _, f = part
                g = row_grads[i][0]
                g = tf.zeros(shape) if g is None else tf.reshape(g, shape)
                a = tf.tensordot(g, weights, axes=[[1], [0]]) * f  # (b, ...)
                flat_a = tf.reshape(a, [tf.shape(a)[0], -1])
                row[0].append(tf.reduce_sum(tf.abs(flat_a), axis=1))
                row[1].append(tf.reduce_sum(flat_a, axis=1))
                if with_profile:
                    t = tf.reshape(tf.abs(a), [tf.shape(a)[0], tf.shape(a)[1], -1])
                    row[2].append(tf.reduce_sum(t, axis=2))  # (b, T)
                maps[i].append(tf.reduce_sum(a, axis=-1) if len(s.shape) >= 3 else a)
            abs_sums.append(tf.stack(row[0]))
            signed_sums.append(tf.stack(row[1]))
            if with_profile:
                profiles.append(tf.stack(row[2]))
        prof = tf.stack(profiles) if with_profile else tf.zeros([0])
        return (tf.stack(abs_sums), tf.stack(signed_sums), prof,
                tuple(tf.stack(m) for m in maps) if with_maps else ())

    def _averaged(grads, parts, watched, shapes, manual, weights, k, tf):
        """gbars[r][i]: per site of routed input i, (W, (b, T, G) node-weighted gradient at
        its projection) for score row r; one backward loop per manual site for all rows."""
        out = [[[] for _ in parts] for _ in grads]
        for i in sites:
            b, t = shapes[i][0], shapes[i][2]
            for j, (layer, _) in enumerate(sites[i]):
                w = tf.convert_to_tensor(kernel(layer))
                zeros = tf.zeros(tf.stack([b, t, w.shape[1]]))
                if (i, j) in manual:
                    with_grad = [r for r, g in enumerate(grads) if g[i][j] is not None]
                    every = {}
                    if with_grad:
                        layer_, saved = manual[(i, j)]
                        stacked = tf.stack([grads[r][i][j] for r in with_grad])
                        every = dict(zip(with_grad, tf.unstack(recurrent_grads.backward(
                            layer_, saved, stacked, b, k, weights), num=len(with_grad))))
                    for r in range(len(grads)):
                        out[r][i].append((w, every.get(r, zeros)))
                    continue
                for r, g in enumerate(grads):
                    g = g[i][j]
                    out[r][i].append((w, zeros if g is None else tf.tensordot(
                        tf.reshape(g, tf.stack([b, k, t, w.shape[1]])), weights,
                        axes=[[1], [0]])))
        return out

    def _onehot_attr(part, gbars, dense):
        """Per step (b, T) sums of |attribution| and of attribution of a routed input, from
        its sites' (W, gbar) pairs."""
        f_plus, f_minus, f_row = part[5:]
        if dense:
            gx = tf.add_n([tf.tensordot(gbar, w, axes=[[2], [1]])
                           for w, gbar in gbars])  # (b, T, F)
            f = (tf.one_hot(f_plus, f_row.shape[2]) - tf.one_hot(f_minus, f_row.shape[2])
                 + f_row)
            a = gx * f
            return tf.reduce_sum(tf.abs(a), axis=2), tf.reduce_sum(a, axis=2)
        at_plus = tf.add_n([tf.reduce_sum(gather_rows(w, f_plus) * gbar, axis=2)
                            for w, gbar in gbars])  # (b, T): W[c] . gbar
        at_minus = tf.add_n([tf.reduce_sum(gather_rows(w, f_minus) * gbar, axis=2)
                             for w, gbar in gbars])
        return tf.abs(at_plus) + tf.abs(at_minus), at_plus - at_minus

    return run
