"""The model graph: which inputs can reach which heads, per call site.

A shared layer is one layer with several call sites (Keras "nodes"). Reachability must follow
call sites: in the `separate` variant the shared LSTM's call on tweet_a feeds head_1 and its call
on tweet_b feeds head_2; following layers instead would connect head_1 to tweet_b. A nested
model used as a layer is one call site whose outputs are taken to depend on all of its inputs
(an over-approximation: structural zeros are never claimed falsely).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CallSite:
    """One call of one layer: the layer's name and the index of the call (Keras node index)."""

    layer: str
    index: int


@dataclasses.dataclass(frozen=True)
class Structure:
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

    def to_json(self) -> dict:
        return {"heads": list(self.heads), "inputs": list(self.inputs),
                "structural": self.reach.tolist(),
                "shared_layers": self.shared,
                "call_sites": self.call_sites,
                "layers_per_head": {h: sorted({s.layer for s in self.upstream[h]})
                                    for h in self.heads},
                "edges": sorted(self.edges)}


def input_names(model) -> tuple[str, ...]:
    return tuple(t._keras_history.operation.name for t in model.inputs)


def output_names(model) -> tuple[str, ...]:
    return tuple(model.output_names)


def structure(model) -> Structure:
    """Walks the functional graph back from every output, one call site at a time."""
    inputs = input_names(model)
    heads = output_names(model)
    reach = np.zeros((len(heads), len(inputs)), dtype=bool)
    upstream = {}
    seen_sites: dict[str, set[int]] = {}
    edges = set()
    for h, tensor in enumerate(model.outputs):
        sites, found = _walk(tensor, edges)
        upstream[heads[h]] = frozenset(sites)
        for name in found:
            reach[h, inputs.index(name)] = True
        for site in sites:
            seen_sites.setdefault(site.layer, set()).add(site.index)
    weighted = frozenset(layer.name for layer in model.layers if layer.trainable_weights)
    return Structure(heads=heads, inputs=inputs, reach=reach, upstream=upstream,
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
        if edges is not None:
            here = f"{operation.name}#{index}"
            edges.update((_node_id(t), here) for t in node.input_tensors)
        stack.extend(node.input_tensors)
    return sites, found
