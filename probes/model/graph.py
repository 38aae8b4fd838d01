"""The model graph: which inputs can reach which heads, per call site.

A shared layer is one layer with several call sites (Keras "nodes"). Reachability must follow
call sites: in the `separate` variant the shared LSTM's call on tweet_a feeds head_1 and its call
on tweet_b feeds head_2; following layers instead would connect head_1 to tweet_b. A functional
model used as a layer is followed inside: each of its outputs depends only on the inner inputs
that reach it. Any other layer's outputs are taken to depend on all of its inputs (an
over-approximation: structural zeros are never claimed falsely).

Heads are the model's outputs in the order Keras flattens them (`model.outputs`), named by their
dict key when the model returns a dict, else by their layer's name; `heads` is the one place
that pairs names with tensors (probes.model.graphrun returns a run's outputs in the same order).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import weakref

import numpy as np

from probes.results import resultio
from probes.results.protocol import Result


@resultio.register("callsite")
@dataclasses.dataclass(frozen=True)
class CallSite:
    """One call of one layer: the layer's name and the index of the call (Keras node index)."""

    layer: str
    index: int


@resultio.register("structure")
@dataclasses.dataclass(frozen=True)
class Structure(Result):
    """What the graph allows.

    Attributes:
        heads: output names, model order (H,).
        inputs: input names, model order (I,).
        reach: (H, I) bool, True where a path of call sites links input i to head h.
        upstream: per head, every call site upstream of it.
        call_sites: layer name -> number of its call sites in this model (layers with weights
            or several calls; input layers excluded).
        weighted: names of layers that own trainable weights.
        edges: (from, to) between graph nodes upstream of a head: an input's name, or
            "layer#index" for a call site.
        readable: False for a subclassed model, whose call is code: every head may read
            every input (no structural zeros are claimed) and there is no graph to show.
    """

    heads: tuple[str, ...]
    inputs: tuple[str, ...]
    reach: np.ndarray
    upstream: dict[str, frozenset[CallSite]]
    call_sites: dict[str, int]
    weighted: frozenset[str]
    edges: frozenset[tuple[str, str]] = frozenset()
    readable: bool = True

    @property
    def shared(self) -> dict[str, int]:
        """Layers called at more than one call site -> number of call sites."""
        return {name: n for name, n in self.call_sites.items() if n > 1}

    def heads_using(self, layer: str) -> tuple[str, ...]:
        """Heads with one of `layer`'s call sites upstream, model order."""
        return tuple(h for h in self.heads if any(s.layer == layer for s in self.upstream[h]))

    def verdict(self, head: str, input: str) -> str:  # noqa: A002
        """"path" where the graph links the input to the head, else "structural_zero"."""
        reached = self.reach[self.heads.index(head), self.inputs.index(input)]
        return "path" if reached else "structural_zero"

    def summary(self) -> dict:
        """{head: {input: verdict}} and the shared layers with their call sites."""
        return {"verdict": {h: {i: self.verdict(h, i) for i in self.inputs}
                            for h in self.heads},
                "shared_layers": self.shared}

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): a row per head, "path" or "-" per input."""
        return (["head"] + list(self.inputs),
                [[h] + ["path" if r else "-" for r in row] for h, row in
                 zip(self.heads, self.reach)])

    def table(self) -> str:
        """The paths per head and input, then the shared layers (`probe structure`)."""
        from probes.results.text import table

        lines = ["paths from input to head (per call site):", table(*self.table_rows()), ""]
        if self.shared:
            lines += ["shared layers (one set of weights, several call sites):",
                      table(["layer", "call sites", "heads using it"],
                            [[name, n, ", ".join(self.heads_using(name))]
                             for name, n in self.shared.items()], align="lrl")]
        else:
            lines.append("no shared layers")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"heads": list(self.heads), "inputs": list(self.inputs),
                "structural": self.reach.tolist(),
                "shared_layers": self.shared,
                "call_sites": self.call_sites,
                "layers_per_head": {h: sorted({s.layer for s in self.upstream[h]})
                                    for h in self.heads},
                "edges": sorted(self.edges), **({} if self.readable else {"readable": False})}


# What needs a graph, and what runs without one (the one line `no_graph` ends with).
GRAPHLESS = ("structure, no-path checks and graph pages need one; ablation and the gradient "
             "probes run by calling it on data")
_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Views of subclassed models: view -> (the model, its head names); see `called_view`. A view
# calls its model (holds it), so the last CALLED_KEPT views are kept, not one per model ever
# probed: a view is made again (and its passes traced again) after that.
_CALLED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CALLED_KEPT: collections.OrderedDict = collections.OrderedDict()
CALLED_KEPT = 8


def functional(model, like=None):
    """`model` as the functional model the probes read: a functional model itself; a
    keras.Sequential as a functional view of the same layers and weights
    (`keras.Model(model.inputs, model.outputs)`, made once per model: its compiled passes are
    kept), its input and output named as Keras names them; a subclassed model, given the data
    it is called on (`like`), as `called_view(model, like)`. The user's model is not changed.

    Raises:
        ValueError: a Sequential that was never built (no input shape yet), a subclassed
            model without data to call it on, or an object that is not a Keras model.
    """
    kind = type(model).__name__
    if kind == "Sequential":
        if model in _VIEWS:
            return _VIEWS[model]
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs:
            raise ValueError(f"Expected a built Sequential model; received {model.name!r}, "
                             "which has no input shape yet (start it with keras.Input(shape), "
                             "or call or build it once)")
        import keras

        view = keras.Model(inputs, outputs, name=model.name)
        _VIEWS[model] = view
        return view
    if any(c.__name__ == "Functional" for c in type(model).__mro__):
        return model
    if not is_subclassed(model):
        raise ValueError(f"Expected a Keras model; received a {kind}")
    if like is None:
        raise ValueError(no_graph(model, GRAPHLESS))
    return called_view(model, like)


def is_subclassed(model) -> bool:
    """A keras.Model subclass that is neither functional nor Sequential."""
    import keras

    mro = {c.__name__ for c in type(model).__mro__}
    return isinstance(model, keras.Model) and not mro & {"Functional", "Sequential"}


def readable(model) -> bool:
    """Whether the probes can read `model`'s graph (False for a subclassed model's view)."""
    return model not in _CALLED


def called_model(view):
    """The subclassed model a `called_view` calls, or None for any other model."""
    return _CALLED[view][0] if view in _CALLED else None


def no_graph(model, what: str) -> str:
    """The one line that says a subclassed model has no graph for `what`."""
    model = _CALLED[model][0] if model in _CALLED else model
    return (f"Expected a functional or Sequential model; received subclassed model "
            f"{model.name!r} ({type(model).__name__}), whose call is Python code with no graph "
            f"to read: {what}")


def called_view(model, like):
    """A functional model around a subclassed one: keras.Input per array of `like` (named by
    its key, or input_K for a list), the model called on them as it takes them (the dict, the
    list, or the one tensor: the first form its call accepts), its outputs the heads, named by
    their dict keys or output_K. One call site, the user's model, holds every layer: the
    probes run it by calling it, and the graph claims no structural zeros. Made once per model
    and input signature (the last CALLED_KEPT kept); the user's model is not changed.

    Args:
        like: {name: (N, ...) array} or a list of arrays (one array: a list of one).
    """
    import keras

    named = like if isinstance(like, dict) else {
        f"input_{k}": x for k, x in enumerate(like if isinstance(like, (list, tuple))
                                              else [like])}
    signature = tuple((name, _spec(x)) for name, x in named.items())
    key = (id(model), signature)
    if key in _CALLED_KEPT and _CALLED_KEPT[key][0] is model:
        _CALLED_KEPT.move_to_end(key)
        return _CALLED_KEPT[key][1]
    inputs = [keras.Input(shape=shape, dtype=dtype, name=name)
              for name, (shape, dtype) in signature]
    forms = [dict(zip(named, inputs)), list(inputs)] + ([inputs[0]] if len(inputs) == 1 else [])
    if not isinstance(like, dict):
        forms = forms[1:] + forms[:1]
    errors = []
    for form in forms:
        try:
            out = model(form)
            break
        except Exception as err:  # noqa: BLE001 (the user's call may raise anything)
            errors.append(_first_line(err))
    else:
        raise ValueError(f"Expected subclassed model {model.name!r} to take inputs "
                         f"{list(named)} as a dict, a list or one tensor; received an error "
                         f"from its call: {errors[0]}")
    paths = keras.tree.flatten_with_path(out)
    outputs = [t for _, t in paths]
    names = (tuple(".".join(map(str, path)) for path, _ in paths) if isinstance(out, dict)
             else tuple(f"output_{k}" for k in range(len(outputs))))
    view = keras.Model(inputs, outputs, name=model.name)
    _CALLED[view] = (model, names)
    _CALLED_KEPT[key] = (model, view)
    while len(_CALLED_KEPT) > CALLED_KEPT:  # a view holds its model: keep the last few only
        _CALLED_KEPT.popitem(last=False)
    return view


def _first_line(err: Exception) -> str:
    """The line of an error from a layer's call that says what went wrong (Keras wraps it in
    "Exception encountered when calling ..." and lists the arguments after it)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line and not line.startswith(
        ("Exception encountered", "Arguments received", "•"))]
    for k, line in enumerate(lines[:-1]):
        if line.endswith("Error encountered:"):  # Keras' shape inference wraps the cause
            lines = lines[k + 1:]
            break
    text = re.split(r" (?:Inputs received|Received):", lines[0])[0] if lines else "no message"
    return f"{type(err).__name__}: {text[:300]}"


def _spec(x) -> tuple[tuple, str]:
    """(shape without the batch axis, Keras dtype) of one input array."""
    x = np.asarray(x) if not hasattr(x, "dtype") else x
    kind = np.dtype(x.dtype).kind
    dtype = ("float32" if kind == "f" else "int32" if kind in "iu" else "bool" if kind == "b"
             else "string" if kind in "US" else str(x.dtype))
    return tuple(x.shape[1:]), dtype


def input_names(model) -> tuple[str, ...]:
    return tuple(t._keras_history.operation.name for t in model.inputs)


def heads(model) -> list[tuple[str, object]]:
    """(name, output tensor) per head, in `model.outputs` order: a dict output is named by its
    key, any other by the name of the layer that produced it (a subclassed model's, by its dict
    key or output_K: `called_view`)."""
    if model in _CALLED:
        return list(zip(_CALLED[model][1], model.outputs))
    struct = getattr(model, "_outputs_struct", None)
    layer_names = [t._keras_history.operation.name for t in model.outputs]
    if isinstance(struct, dict):
        import keras

        paths = [path for path, _ in keras.tree.flatten_with_path(struct)]
        names = [".".join(map(str, path)) for path in paths]
        if len(names) == len(layer_names):
            return list(zip(names, model.outputs))
    return list(zip(layer_names, model.outputs))


def output_names(model) -> tuple[str, ...]:
    return tuple(name for name, _ in heads(model))


def head_aliases(model) -> dict[str, str]:
    """Every accepted name of a head -> its name: the head's own name (a dict key) and the
    name of its output layer, when that names no other head."""
    pairs = heads(model)
    own = {name for name, _ in pairs}
    out = {}
    for name, tensor in pairs:
        layer = tensor._keras_history.operation.name
        if layer not in own and sum(t._keras_history.operation.name == layer
                                    for _, t in pairs) == 1:
            out[layer] = name
    out.update({name: name for name in own})
    return out


def resolve_head(model, name: str) -> str:
    """The head called `name` (its own name or its output layer's), or ValueError."""
    aliases = head_aliases(model)
    if name not in aliases:
        raise ValueError(f"Expected a head of the model ({', '.join(output_names(model))}); "
                         f"received {name!r}")
    return aliases[name]


def consumers(model, tensor) -> list[tuple[object, int]]:
    """(layer, call index) of every call site upstream of a head that reads `tensor`."""
    found, stack, visited = [], list(model.outputs), set()
    while stack:
        history = stack.pop()._keras_history
        key = (id(history.operation), history.node_index)
        if key in visited:
            continue
        visited.add(key)
        node = history.operation._inbound_nodes[history.node_index]
        if any(t is tensor for t in node.input_tensors):
            found.append((history.operation, history.node_index))
        stack.extend(node.input_tensors)
    return found


def token_sites(model) -> dict[int, list[tuple[object, int]]]:
    """Token inputs found from the graph, whatever their declared dtype: input index -> the
    Embedding call sites that read it, for every input whose consumers are all Embedding call
    sites or ops that only compute a boolean mask from it (`mask_zero=True`)."""
    import keras

    out = {}
    for i, tensor in enumerate(model.inputs):
        sites = consumers(model, tensor)
        embeds = [(layer, k) for layer, k in sites if isinstance(layer, keras.layers.Embedding)]
        masks = [(layer, k) for layer, k in sites if (layer, k) not in embeds and all(
            "bool" in str(t.dtype) for t in layer._inbound_nodes[k].output_tensors)]
        if embeds and len(embeds) + len(masks) == len(sites):
            out[i] = embeds
    return out


def structure(model) -> Structure:
    """Walks the functional graph back from every output, one call site at a time (a
    subclassed model's view: its one call site reads every input, `readable` False)."""
    inputs = input_names(model)
    pairs = heads(model)
    names = tuple(name for name, _ in pairs)
    reach = np.zeros((len(pairs), len(inputs)), dtype=bool)
    upstream = {}
    seen_sites: dict[str, set[int]] = {}
    edges = set()
    for h, (head, tensor) in enumerate(pairs):
        sites, found = _walk(tensor, edges)
        upstream[head] = frozenset(sites)
        for name in found:
            reach[h, inputs.index(name)] = True
        for site in sites:
            seen_sites.setdefault(site.layer, set()).add(site.index)
    weighted = frozenset(layer.name for layer in model.layers if layer.trainable_weights)
    return Structure(heads=names, inputs=inputs, reach=reach, upstream=upstream,
                     call_sites={k: len(v) for k, v in seen_sites.items()}, weighted=weighted,
                     edges=frozenset(edges), readable=readable(model))


def _node_id(tensor) -> str:
    history = tensor._keras_history
    node = history.operation._inbound_nodes[history.node_index]
    if not node.input_tensors:
        return history.operation.name
    return f"{history.operation.name}#{history.node_index}"


def _walk(tensor, edges: set | None = None) -> tuple[set[CallSite], set[str]]:
    """Call sites upstream of `tensor` and the input layers it reaches (iterative DFS); adds
    (from, to) node edges to `edges`."""
    sites, found = set(), set()
    stack = [tensor]
    visited = set()
    while stack:
        history = stack.pop()._keras_history
        operation, index = history.operation, history.node_index
        key = (id(operation), index)
        if key in visited:
            continue
        visited.add(key)
        node = operation._inbound_nodes[index]
        if not node.input_tensors:  # an InputLayer
            found.add(operation.name)
            continue
        sites.add(CallSite(operation.name, index))
        inner = _inner_reach(operation, history.tensor_index, len(node.input_tensors))
        followed = [t for j, t in enumerate(node.input_tensors) if inner is None or inner[j]]
        if edges is not None:
            here = f"{operation.name}#{index}"
            edges.update((_node_id(t), here) for t in followed)
        stack.extend(followed)
    return sites, found


def _inner_reach(operation, output_index: int, n_inputs: int):
    """For a functional model called as a layer: per input of the call, whether it reaches
    output `output_index` inside; None for any other layer (all inputs reach all outputs)."""
    if not (hasattr(operation, "_nodes_by_depth") and hasattr(operation, "inputs")
            and hasattr(operation, "outputs")) or len(operation.inputs) != n_inputs:
        return None
    _, found = _walk(operation.outputs[output_index])
    names = [t._keras_history.operation.name for t in operation.inputs]
    return [name in found for name in names]
