"""Runs a functional model's graph call site by call site, with some call sites' outputs given.

The probes need the model's own computation with two changes that calling the model cannot
express, and must not touch the user's model object to get them:
  - a token input's Embedding call site can be given its output (a point in embedding space on
    an integrated-gradients path), while every other op still reads the original tokens, so a
    mask computed from them (`Embedding(mask_zero=True)`) stays fixed along the path;
  - boolean masks computed from the inputs (`Masking`, `mask_zero=True`: NotEqual and Any ops
    in the graph) can be computed from other inputs than the rest, the original sample, so
    that they stay fixed while the points move along a path;
  - a head whose output layer squashes (sigmoid, softmax) can be read before the squashing
    ("logit space"), from a shallow copy of that layer with a linear activation that shares the
    layer's weights;
  - a call site can be computed by another function from its own arguments: a layer fed a
    one-hot input runs from gathered kernel rows (probes.engine.onehot_path).
This is the loop of Keras' `Functional._run_through_graph`, with those substitutions.
"""

from __future__ import annotations

SQUASHING = ("sigmoid", "softmax")


def logit_heads(model) -> dict[str, object]:
    """Head name -> the head's output layer, for heads whose layer ends in a sigmoid or softmax
    activation (the heads that logit space reads before the activation)."""
    from probes.model.graph import heads

    out = {}
    for name, tensor in heads(model):
        layer = tensor._keras_history.operation
        if getattr(getattr(layer, "activation", None), "__name__", None) in SQUASHING:
            out[name] = layer
    return out


def has_masks(model) -> bool:
    """Whether the graph computes boolean tensors (masks) anywhere."""
    return any(all("bool" in str(t.dtype) for t in node.outputs) and node.outputs
               for nodes in model._nodes_by_depth.values() for node in nodes
               if not node.is_input)


def linear_copy(layer):
    """A shallow copy of `layer` whose activation is linear: same weights, the original
    untouched."""
    import keras

    # copy.copy would pickle a Keras layer (its __reduce__ saves it): copy the attributes.
    twin = object.__new__(type(layer))
    twin.__dict__.update(layer.__dict__)
    object.__setattr__(twin, "activation", keras.activations.linear)
    return twin


def call_key(node) -> tuple[int, int]:
    """A call site's key: (id(layer), index of the call among the layer's calls)."""
    return id(node.operation), node.operation._inbound_nodes.index(node)


def call_sites(model):
    """The model's call sites (nodes that call a layer), in the order run_graph runs them."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation and not node.is_input:
                yield node


def split_at(model, varied: int) -> tuple[frozenset, list]:
    """Where a pass in which only input `varied` changes must compute again.

    Returns:
        (downstream, frontier): the keys (`call_key`) of the call sites that read input
        `varied`, directly or through other call sites; and the (key, node) pairs of the
        other call sites whose outputs a downstream call site or a head reads, in run order.
        Given the frontier's outputs at the samples, the downstream call sites compute the
        heads (run_graph's `given` and `only`): the rest of the graph is the samples' own.
    """
    seen = {id(model.inputs[varied])}
    downstream, producers = set(), {}
    for node in call_sites(model):
        if any(id(t) in seen for t in node.input_tensors):
            downstream.add(call_key(node))
            seen.update(id(t) for t in node.outputs)
        for t in node.outputs:
            producers[id(t)] = node
    read = [t for node in call_sites(model) if call_key(node) in downstream
            for t in node.input_tensors] + list(model.outputs)
    needed = {call_key(producers[id(t)]) for t in read
              if id(t) not in seen and id(t) in producers}
    frontier = [(call_key(node), node) for node in call_sites(model)
                if call_key(node) in needed]
    return frozenset(downstream), frontier


def run_graph(model, inputs: list, *, given: dict | None = None, linear: frozenset = frozenset(),
              fixed: list | None = None, replaced: dict | None = None,
              only: frozenset | None = None, returns: list | None = None) -> list:
    """The model's outputs in `heads` order, computed call site by call site in inference mode.

    Args:
        inputs: one tensor per model input, model order.
        given: {(id(layer), call index): tensor, or a list of one tensor per output} outputs
            to use instead of calling those call sites.
        linear: ids of output layers to call with a linear activation instead of their own.
        fixed: one tensor per model input (the original samples), from which every op with
            only boolean outputs that reads nothing but inputs and such ops (a mask) is
            computed instead; None computes masks from `inputs` like the rest.
        replaced: {(id(layer), call index): fn(layer, *args, **kwargs) -> outputs} call
            sites computed by `fn` instead of the layer, from the call's own arguments (the
            layer passed is its linear copy where `linear` asks for one): the one-hot path
            runs a layer from gathered kernel rows (probes.engine.onehot_path).
        only: the keys of the call sites to compute (with the given ones); None: all.
        returns: the tensors of the graph to return instead of the model's outputs.
    """
    import keras

    given = given or {}
    twins = {}
    values = {id(t): x for t, x in zip(model.inputs, inputs)}
    masks = {} if fixed is None else {id(t): x for t, x in zip(model.inputs, fixed)}
    for node in call_sites(model):
        op = node.operation
        key = call_key(node)
        if key not in given and (
                (only is not None and key not in only)
                or any(id(t) not in values for t in node.input_tensors)):
            continue  # not asked for, or not downstream of what the inputs feed
        mask = bool(masks) and all(id(t) in masks for t in node.input_tensors) and all(
            "bool" in str(t.dtype) for t in node.outputs)
        if key in given:
            value = given[key]
            outs = list(value) if isinstance(value, (list, tuple)) else [value]
        else:
            args, kwargs = node.arguments.fill_in(masks if mask else values)
            if "training" in getattr(op, "_call_context_args", {}):
                kwargs["training"] = False
            if id(op) in linear:
                op = twins.setdefault(id(op), linear_copy(op))
            call = replaced.get(key) if replaced else None
            outs = keras.tree.flatten(call(op, *args, **kwargs) if call else
                                      op(*args, **kwargs))
        for tensor, value in zip(node.outputs, outs):
            values[id(tensor)] = value
            if mask:
                masks[id(tensor)] = value
    return [values[id(t)] for t in (model.outputs if returns is None else returns)]
