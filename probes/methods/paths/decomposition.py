"""The exact split of a head's pre-activation over the call sites it concatenates.

A head that is a Dense layer on a concatenation [z_1, ..., z_K], each z_k the output of one call
site (the shared LSTM on tweet_a, and on tweet_b), has the pre-activation
    logit(n) = sum_k W_k^T z_k(n) + b        exactly,
W_k being the rows of the kernel that read part k. Linear Dense layers, nested concatenations
and layers that are the identity at inference (Dropout...) between the parts and the head are
folded into W_k and b, so the split is exact wherever the graph is linear from the parts to the
head. A head reading one call site gets all of it, trivially; a head behind a non-linear layer
that mixes inputs (an MLP) is not decomposable: see probes.methods.paths.interaction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from probes.engine.forward import run_all
from probes.model import data as pdata
from probes.model.graph import _walk
from probes.results import resultio
from probes.results.protocol import Result

KINDS = ("decomposed", "single_part", "not_decomposable")
# Layers that are the identity at inference, so a linear path runs through them.
IDENTITY_LAYERS = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D",
                             "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                             "AlphaDropout", "Identity", "ActivityRegularization"})


@resultio.register("headsplit")
@dataclasses.dataclass(frozen=True)
class HeadSplit:
    """One output unit's pre-activation split over the call sites that feed it.

    Attributes:
        target: the head's name, or "head[c]" for unit c of a head with several units.
        kind: one of KINDS; `reason` says why in words.
        parts: (K,) call sites, "layer@index" (Keras node index), empty unless decomposable.
        part_inputs: (K,) the model inputs each part reads.
        contributions: (K, N) float64, W_k^T z_k(n).
        bias: the constant term b (folded biases included).
        logit: (N,) the model's own pre-activation, computed separately by Keras.
    """

    target: str
    kind: str
    reason: str
    parts: tuple[str, ...]
    part_inputs: tuple[tuple[str, ...], ...]
    contributions: np.ndarray
    bias: float
    logit: np.ndarray

    @property
    def residual(self) -> np.ndarray:
        """(N,) logit - (sum of parts + bias): float noise where the split is exact."""
        if self.kind == "not_decomposable":
            return np.full_like(self.logit, np.nan)
        return self.logit - self.contributions.sum(axis=0) - self.bias

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample shares: raw (K + 1, N), the last row the bias, from |c_k(n)|; centred
        (K, N) from |c_k(n) - mean_n c_k|, so a constant offset counts for nothing."""
        n = self.logit.shape[0]
        raw = np.concatenate([np.abs(self.contributions), np.full((1, n), abs(self.bias))])
        centred = np.abs(self.contributions - self.contributions.mean(axis=1, keepdims=True))
        return _normalise(raw), _normalise(centred)

    def summary(self) -> dict:
        """Per part: mean, std, and shares of the means (mean |c_k| / sum_j mean |c_j|)."""
        c = self.contributions
        raw_abs = np.concatenate([np.abs(c).mean(axis=1), [abs(self.bias)]])
        cen_abs = np.abs(c - c.mean(axis=1, keepdims=True)).mean(axis=1)
        exact = self.kind != "not_decomposable"
        return {"target": self.target, "kind": self.kind, "reason": self.reason,
                "parts": list(self.parts), "part_inputs": [list(p) for p in self.part_inputs],
                "mean": c.mean(axis=1).tolist(), "std": c.std(axis=1).tolist(),
                "share_raw": _normalise(raw_abs).tolist()[:-1],
                "share_raw_bias": float(_normalise(raw_abs)[-1]) if exact else None,
                "share_centred": _normalise(cen_abs).tolist(), "bias": self.bias,
                "logit_std": float(self.logit.std()),
                "max_abs_residual": float(np.max(np.abs(self.residual))) if exact else None}

    def to_json(self) -> dict:
        raw, centred = self.shares()
        return {**self.summary(), "contributions": self.contributions.tolist(),
                "logit": self.logit.tolist(), "per_sample_share_raw": raw.tolist(),
                "per_sample_share_centred": centred.tolist()}


@resultio.register("decomposition")
@dataclasses.dataclass(frozen=True)
class Decomposition(Result):
    """Every output unit's split. sample_ids: (N,); params: the probe's settings."""

    model: str
    splits: tuple[HeadSplit, ...]
    sample_ids: np.ndarray
    params: dict

    def summary(self) -> list[dict]:
        """Per output unit, its split's summary (HeadSplit.summary: kind, parts, their means,
        spreads and shares, the bias, the largest residual)."""
        return [split.summary() for split in self.splits]

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): a row per part of each unit's split, then its bias."""
        rows = []
        for s in self.summary():
            for k, part in enumerate(s["parts"]):
                rows.append([s["target"], part, ", ".join(s["part_inputs"][k]),
                             f"{s['mean'][k]:.4g}", f"{s['std'][k]:.4g}",
                             f"{s['share_raw'][k]:.3f}", f"{s['share_centred'][k]:.3f}"])
            if s["kind"] == "not_decomposable":
                rows.append([s["target"], "(not decomposable)", "-", "-", "-", "-", "-"])
            else:
                rows.append([s["target"], "bias", "", f"{s['bias']:.4g}", "0",
                             f"{s['share_raw_bias']:.3f}", "0"])
        return ["head", "part", "inputs", "mean", "std", "share raw", "share centred"], rows

    def table(self) -> str:
        """The splits as `probe paths` prints them, with why each unit splits or not."""
        from probes.results.text import table

        notes = [s["reason"] if s["kind"] == "not_decomposable" else
                 f"{s['reason']}; max |parts + bias - logit| = {s['max_abs_residual']:.2e} "
                 f"(logit std {s['logit_std']:.4g})" for s in self.summary()]
        return "\n".join(
            [f"decomposition of {self.model} on {len(self.sample_ids)} samples: pre-activation "
             "= sum of parts + bias", table(*self.table_rows(), align="lllrrrr"), *notes,
             "share raw: mean |term| / sum of mean |term| (bias included); share centred: the "
             "same after subtracting each term's mean over samples"])

    def to_json(self) -> dict:
        return {"probe": "paths/decomposition", "model": self.model,
                "samples": int(self.sample_ids.shape[0]), "params": self.params,
                "sample_ids": self.sample_ids.tolist(),
                "heads": [s.to_json() for s in self.splits]}


def _normalise(a: np.ndarray) -> np.ndarray:
    """a / a.sum(axis=0), 0 where the sum is 0."""
    total = a.sum(axis=0, keepdims=True)
    return np.divide(a, total, out=np.zeros_like(a, dtype=np.float64), where=total > 0)


def _targets(model) -> list[tuple[int, str, int]]:
    """(output index, label, unit) per output unit; a head with C > 1 units gives head[c]."""
    out = []
    for h, (head, tensor) in enumerate(zip(pdata.output_names(model), model.outputs)):
        units = int(np.prod([d or 1 for d in tuple(tensor.shape)[1:]]))
        out += [(h, head if units == 1 else f"{head}[{c}]", c) for c in range(units)]
    return out


def decompose(model, inputs, *, rng: np.random.Generator | None = None,
              batch_size: int = 256, sample_ids=None, model_name: str | None = None,
              seed: int | None = None) -> Decomposition:
    """Splits each head's pre-activation into one term per call site it reads, plus the bias.

    Args:
        model: a functional Keras model.
        inputs: {input name: (N, ...) array} or a list in model order.
        rng: unused (the split draws nothing); accepted so every probe has one signature.
        batch_size: rows per forward pass.
    Returns:
        A Decomposition with one HeadSplit per output unit, contributions (K, N).
    """
    del rng
    xs = pdata.canonical_inputs(model, inputs, "inputs")
    n = xs[0].shape[0]
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    plans, tensors = [], {}
    for h, tensor in enumerate(model.outputs):
        plan = _plan(tensor)  # (reason or None, {key: (tensor, M (D, C))}, bias (C,))
        plans.append(plan)
        for key, (t, _) in plan[1].items():
            tensors.setdefault(key, t)
    keys = list(tensors)
    outs = _forward_parts(model, xs, [tensors[k] for k in keys], batch_size)
    values = dict(zip(keys, outs[:len(keys)]))  # key -> (N, D)
    logits = outs[len(keys):]  # H x (N, C)
    splits = []
    for h, label, c in _targets(model):
        reason, parts, bias = plans[h]
        logit = logits[h][:, c]
        if reason is not None:
            splits.append(HeadSplit(label, "not_decomposable", reason, (), (),
                                    np.zeros((0, n)), 0.0, logit))
            continue
        names = [_site(parts[k][0]) for k in parts]
        reads = [tuple(sorted(_walk(parts[k][0])[1], key=pdata.input_names(model).index))
                 for k in parts]
        contrib = np.stack([values[k] @ parts[k][1][:, c] for k in parts])  # (K, N)
        kind, why = _kind(label, names, reads)
        if kind == "not_decomposable":
            contrib, names, reads = np.zeros((0, n)), [], []
        splits.append(HeadSplit(label, kind, why, tuple(names), tuple(reads), contrib,
                                float(bias[c]), logit))
    return Decomposition(model=model_name or model.name, splits=tuple(splits), sample_ids=ids,
                         params={"seed": seed, "batch_size": int(batch_size)})


def _kind(label, names, reads) -> tuple[str, str]:
    if len(names) > 1:
        mixed = [f"{p} reads {', '.join(r)}" for p, r in zip(names, reads) if len(r) > 1]
        return "decomposed", (f"{label} is linear in {', '.join(names)}: exact split"
                              + (f" (but {'; '.join(mixed)})" if mixed else ""))
    if len(reads[0]) <= 1:
        return "single_part", (f"{label} reads only {names[0]} "
                               f"({', '.join(reads[0]) or 'no input'}): all of it, trivially")
    return "not_decomposable", (f"{label} reads {names[0]}, a non-linear layer that mixes "
                                f"{', '.join(reads[0])}: not decomposable, see the interaction")


def _site(tensor) -> str:
    op, index = tensor._keras_history.operation, tensor._keras_history.node_index
    return f"{op.name}@{index}"


def _plan(tensor):
    """(reason the head is not a Dense or None, parts {key: (tensor, M (D, C))}, bias (C,))."""
    import keras

    op = tensor._keras_history.operation
    node = op._inbound_nodes[tensor._keras_history.node_index]
    if type(op).__name__ != "Dense" or len(tensor.shape) != 2:
        reason = (f"the head is a {type(op).__name__} layer with output rank "
                  f"{len(tensor.shape)}, not a Dense layer on a vector: not decomposable, "
                  "see the interaction")
        return reason, {}, np.zeros(1)
    kernel = keras.ops.convert_to_numpy(op.kernel).astype(np.float64)  # (D, C)
    bias = (keras.ops.convert_to_numpy(op.bias).astype(np.float64) if op.use_bias
            else np.zeros(kernel.shape[1]))
    parts = {}
    bias = bias + _expand(node.input_tensors[0], kernel, parts)
    return None, parts, bias


def _expand(tensor, m: np.ndarray, parts: dict) -> np.ndarray | float:
    """Folds the linear path above `tensor` into `parts`; returns the bias it adds (C,)."""
    import keras

    op, index, out = tensor._keras_history
    node = op._inbound_nodes[index]
    name = type(op).__name__
    rank = len(tensor.shape)
    if name in IDENTITY_LAYERS and node.input_tensors:
        return _expand(node.input_tensors[0], m, parts)
    if name == "Concatenate" and op.axis in (-1, rank - 1):
        added, start = 0.0, 0
        for t in node.input_tensors:
            width = int(t.shape[-1])
            added = added + _expand(t, m[start:start + width], parts)
            start += width
        return added
    if (name == "Dense" and getattr(op.activation, "__name__", "") == "linear"
            and len(node.input_tensors[0].shape) == 2):
        kernel = keras.ops.convert_to_numpy(op.kernel).astype(np.float64)
        added = keras.ops.convert_to_numpy(op.bias).astype(np.float64) @ m if op.use_bias else 0
        return added + _expand(node.input_tensors[0], kernel @ m, parts)
    key = (id(op), index, out)  # the same call site twice (concatenate([z, z])) adds up
    parts[key] = (tensor, parts[key][1] + m if key in parts else m)
    return 0.0


def _forward_parts(model, xs, part_tensors, batch_size) -> list[np.ndarray]:
    """Part values (N, D) then the heads' pre-activations (N, C), one compiled pass a chunk.

    The model is never touched: a sibling keras.Model from the same tensors outputs the parts
    and what each head's output layer reads; the output layer is then called on those through
    a shallow copy with a linear activation (`probes.model.graphrun.linear_copy`), which shares its
    weights. A part read from another head's output keeps that head's activation.
    """
    import keras

    from probes.engine import backends
    from probes.model.graphrun import linear_copy, run_graph

    feeds, calls = {}, []  # id -> tensor an output layer reads; per head its call
    for tensor in model.outputs:
        op, index, out = tensor._keras_history
        node = op._inbound_nodes[index]
        feeds.update((id(t), t) for t in node.arguments.keras_tensors)
        calls.append((node, out, op, linear_copy(op) if hasattr(op, "activation") else op))
    sibling = keras.Model(model.inputs, list(part_tensors) + list(feeds.values()))
    k = len(part_tensors)
    dtypes = [str(t.dtype) for t in model.inputs]
    backend = backends.get()
    specs = [backend.spec((None,) + tuple(t.shape[1:]), d) for t, d in zip(model.inputs, dtypes)]

    def parts_and_logits(inputs):
        got = run_graph(sibling, inputs)
        values = dict(zip(feeds, got[k:]))
        logits = []
        for node, out, op, call in calls:
            args, kwargs = node.arguments.fill_in(values)
            if "training" in getattr(op, "_call_context_args", {}):
                kwargs["training"] = False
            logits.append(keras.tree.flatten(call(*args, **kwargs))[out])
        return got[:k] + logits

    compiled = backend.compile(parts_and_logits, model, specs=[specs])
    return run_all(lambda chunk: compiled([np.asarray(x, d) for x, d in zip(chunk, dtypes)]),
                   xs, batch_size)
