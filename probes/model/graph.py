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

import dataclasses
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
    """

    heads: tuple[str, ...]
    inputs: tuple[str, ...]
    reach: np.ndarray
    upstream: dict[str, frozenset[CallSite]]
    call_sites: dict[str, int]
    weighted: frozenset[str]
    edges: frozenset[tuple[str, str]] = frozenset()

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
                "edges": sorted(self.edges)}


_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def functional(model):
    """`model` as the functional model the probes read: a functional model itself; a
    keras.Sequential as a functional view of the same layers and weights
    (`keras.Model(model.inputs, model.outputs)`, made once per model: its compiled passes are
    kept), its input and output named as Keras names them. The user's model is not changed.

    Raises:
        ValueError: a Sequential that was never built (no input shape yet), or a model that
            is neither functional nor Sequential.
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
    if not any(c.__name__ == "Functional" for c in type(model).__mro__):
        raise ValueError(f"Expected a functional or Sequential Keras model; received a {kind} "
                         "(a subclassed model has no graph to follow: build it with the "
                         "functional API)")
    return model


def input_names(model) -> tuple[str, ...]:
    return tuple(t._keras_history.operation.name for t in model.inputs)


def heads(model) -> list[tuple[str, object]]:
    """(name, output tensor) per head, in `model.outputs` order: a dict output is named by its
    key, any other by the name of the layer that produced it."""
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
    """Walks the functional graph back from every output, one call site at a time."""
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
                     edges=frozenset(edges))


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
