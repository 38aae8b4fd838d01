"""Strings and categories: inputs that the model itself encodes (TextVectorization, StringLookup,
IntegerLookup, Hashing, CategoryEncoding, Discretization) are probed from their encoding.

Such an input has no gradient and no mean, and under JAX no tensor type at all: JAX has no
strings, and the lookup layers run only outside a compiled function. So the model is cut where
its own preprocessing ends: `encoding(model)` gives a view of the same layers whose input, in
place of each such raw input, is the tensor its preprocessing call sites produce (token ids for
an Embedding, or a one-hot / multi-hot float encoding), named as the raw input; `encode` runs
those call sites once, eagerly, on the raw rows. Preprocessing acts row by row, so ablating the
encoded rows is ablating the raw ones: a shuffled row's encoding is the encoding of the
shuffled row; "zero" is the encoding of the empty string (or of an integer outside the
vocabulary); occlusion covers windows of the tokens the model made. Gradients are taken at the
encoding: the Embedding's output for token ids (probes.model.tokens), the one-hot rows
themselves for categories, as Captum's LayerIntegratedGradients attributes at a layer.
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

from probes.model.graphrun import call_key, call_sites, run_graph

PREPROCESSING = ("TextVectorization", "StringLookup", "IntegerLookup", "Hashing",
                 "CategoryEncoding", "Discretization")


@dataclasses.dataclass(frozen=True)
class Encoding:
    """Where a model's own preprocessing ends.

    Attributes:
        model: the user's model (whose inputs are the raw ones), weakly referenced: the
            caches here must not keep it alive.
        view: the same layers from the encodings on; its inputs are named as the raw inputs.
        cut: input index -> the encoding tensor of the user's model that replaces it.
        layers: input index -> the preprocessing layers' names on the way, in call order.
        sites: the keys (graphrun.call_key) of the preprocessing call sites.
        empty: input index -> the encoding of an empty value (`empty_rows`).
    """

    model: object
    view: object
    cut: dict
    layers: dict
    sites: frozenset
    empty: dict = dataclasses.field(default_factory=dict)

    def notes(self, names) -> tuple[str, ...]:
        return tuple(f"{names[i]}: encoded by the model ({', '.join(self.layers[i])}); probed "
                     "from the encoding, ablations built from raw values"
                     for i in sorted(self.cut))


_ENCODINGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> Encoding
_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # view -> Encoding


def encoding(model) -> Encoding | None:
    """The cut of a functional model after its preprocessing, or None when no input is
    encoded by the model (made once per model; the user's model is not changed).

    An input is cut when every call site reading it is a preprocessing layer and its
    preprocessing ends in one tensor (the call sites reading only that input and each other's
    outputs); an input read otherwise stays raw.
    """
    if model in _ENCODINGS:
        return _ENCODINGS[model]
    cut, layers, sites = {}, {}, set()
    for i, tensor in enumerate(model.inputs):
        found = _preprocessing_of(model, tensor)
        if found is not None:
            cut[i], nodes = found
            layers[i] = [node.operation.name for node in nodes]
            sites.update(call_key(node) for node in nodes)
    enc = None
    if cut:
        view = _cut_view(model, cut, sites)
        enc = Encoding(weakref.proxy(model), view, cut, layers, frozenset(sites))
        enc.empty.update(empty_rows(enc))
        _VIEWS[view] = enc
    _ENCODINGS[model] = enc
    return enc


def _cut_view(model, cut: dict, sites: set):
    """The model's layers called again from new inputs: keras.Input per input, named as the
    model's, shaped as its encoding where it is cut; every call site but the preprocessing ones
    (probes.model.graphrun.run_graph on symbolic tensors, the cut call sites given the new
    inputs). The layers (and weights) are the model's; its own graph is not touched."""
    import keras

    inputs = []
    for i, t in enumerate(model.inputs):
        spec = cut.get(i, t)
        inputs.append(keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype,
                                  name=t._keras_history.operation.name))
    producers = {id(o): node for node in call_sites(model) for o in node.outputs}
    given = {}
    for i, tensor in cut.items():
        given[call_key(producers[id(tensor)])] = inputs[i]  # preprocessing: one output
    keys = frozenset(call_key(node) for node in call_sites(model)) - sites
    outputs = run_graph(model, inputs, given=given, only=keys)
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        outputs = keras.tree.pack_sequence_as(struct, outputs)
    return keras.Model(inputs, outputs, name=model.name)


def of_view(view) -> Encoding | None:
    """The Encoding whose view `view` is, or None."""
    return _VIEWS.get(view)


def vocabularies(view) -> dict:
    """Input name -> the vocabulary its token ids index (id -> the token's text), for the
    inputs of an encoding's view that a TextVectorization or a StringLookup turned into ids;
    {} for any other model."""
    enc = of_view(view)
    if enc is None:
        return {}
    out = {}
    for i in enc.cut:
        layer = enc.model.get_layer(enc.layers[i][-1])
        if str(view.inputs[i].dtype).startswith("int") and hasattr(layer, "get_vocabulary"):
            out[view.inputs[i]._keras_history.operation.name] = [
                str(v) for v in layer.get_vocabulary()]
    return out


def _preprocessing_of(model, tensor):
    """(the encoding tensor, the preprocessing nodes in call order) of one input, or None."""
    seen, nodes = {id(tensor)}, []
    for node in call_sites(model):
        reads = [id(t) in seen for t in node.input_tensors]
        if not any(reads):
            continue
        if type(node.operation).__name__ in PREPROCESSING and all(reads):
            nodes.append(node)
            seen.update(id(t) for t in node.outputs)
        elif any(t is tensor for t in node.input_tensors):
            return None  # the raw input read by a layer that is not preprocessing
        elif type(node.operation).__name__ in PREPROCESSING:
            return None  # preprocessing that mixes inputs (a crossing): no one encoding
    if not nodes:
        return None
    inner = {id(t) for node in nodes for t in node.input_tensors}
    ends = [t for node in nodes for t in node.outputs if id(t) not in inner]
    return (ends[0], nodes) if len(ends) == 1 else None


def encode(enc: Encoding, xs: list) -> list:
    """The view's arrays: the raw inputs' rows through the model's preprocessing (run once,
    eagerly), the other inputs as they are."""
    import keras

    outs = run_graph(enc.model, list(xs), only=enc.sites, returns=list(enc.cut.values()))
    coded = dict(zip(enc.cut, (keras.ops.convert_to_numpy(o) for o in outs)))
    return [_numeric(coded[i]) if i in coded else x for i, x in enumerate(xs)]


def empty_rows(enc: Encoding) -> dict:
    """Input index -> (...) the encoding of an empty value, what ablation's "zero" gives a cut
    input: the empty string; an integer outside every vocabulary on the way (the
    out-of-vocabulary id); nothing at all for a CategoryEncoding of ids (a zero row); 0.0."""
    rows, zero = [], set()
    for i, t in enumerate(enc.model.inputs):
        shape = (1,) + tuple(1 if d is None else d for d in t.shape[1:])
        dtype = str(t.dtype)
        first = type(enc.model.get_layer(enc.layers[i][0])).__name__ if i in enc.cut else ""
        if dtype == "string":
            rows.append(np.full(shape, ""))
        elif "int" in dtype and first == "CategoryEncoding":
            rows.append(np.zeros(shape, dtype))
            zero.add(i)
        elif "int" in dtype:
            vocab = [int(v) for name in enc.layers.get(i, ()) for v in _vocabulary(enc.model, name)
                     if _integral(v)]
            rows.append(np.full(shape, min(vocab + [0]) - 1, dtype))
        else:
            rows.append(np.zeros(shape, dtype.replace("string", "float32")))
    coded = encode(enc, rows)
    return {i: np.zeros_like(coded[i][0]) if i in zero else coded[i][0] for i in enc.cut}


def _vocabulary(model, name: str) -> list:
    layer = model.get_layer(name)
    return list(layer.get_vocabulary()) if hasattr(layer, "get_vocabulary") else []


def _integral(value) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError):
        return False


def _numeric(x: np.ndarray) -> np.ndarray:
    """An encoding as the probes take it: int32 ids, float32 rows."""
    return x.astype(np.int32) if x.dtype.kind in "iub" else x.astype(np.float32)
