"""Token inputs in the gradient probes: attributed at the output of their Embedding call site.

A token input (ids into an Embedding, whatever its declared dtype: probes.model.graph.token_sites)
has no gradient. The graph is run with its Embedding call site given the point on the path
(probes.model.graphrun), while every other op, a mask included, still reads the tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tokens:
    """Token inputs (see probes.model.graph.token_sites), attributed at their Embedding's output.

    sites: per input, None or the (id(layer), call index) key of its Embedding call site;
    layers: input index -> that Embedding layer; notes: one line per token input.
    """

    sites: tuple
    layers: dict
    notes: tuple[str, ...]


def token_plan(model, names) -> Tokens:
    """Where each token input is attributed: at the output of the one Embedding call site that
    reads it. Other integer inputs have no gradient and are refused."""
    from probes.model.graph import consumers, token_sites

    found = token_sites(model)
    sites, layers, notes = [], {}, []
    for i, (name, tensor) in enumerate(zip(names, model.inputs)):
        embeds = found.get(i)
        if embeds is None and str(tensor.dtype) == "string":
            raise ValueError(f"Expected input {name!r} to be encoded by the model's own "
                             "preprocessing layers (TextVectorization, StringLookup...) before "
                             "anything else reads it; received strings that another layer "
                             "reads: gradients need numbers, use probe ablate")
        if embeds is None:
            if "int" in str(tensor.dtype):
                kinds = ", ".join(f"{type(layer).__name__} {layer.name!r}"
                                  for layer, _ in consumers(model, tensor))
                raise ValueError(f"Expected integer input {name!r} to feed only Embedding "
                                 f"layers (gradients need float inputs); received {kinds} "
                                 "reading it: use probe ablate")
            sites.append(None)
            continue
        if len(embeds) != 1:
            raise ValueError(f"Expected token input {name!r} to feed one Embedding call site; "
                             f"received {len(embeds)} "
                             f"({', '.join(layer.name for layer, _ in embeds)}): use probe "
                             "ablate")
        layer, index = embeds[0]
        sites.append((id(layer), index))
        layers[i] = layer
        masked = " (its mask is computed from the tokens and held fixed)" if getattr(
            layer, "mask_zero", False) else ""
        notes.append(f"{name}: tokens, attributed at the output of Embedding {layer.name!r} "
                     f"(call site {index}){masked}")
    return Tokens(tuple(sites), layers, tuple(notes))


def embed(layer, tokens) -> np.ndarray:
    """(N, ...) integer tokens -> (N, ..., D) float32 rows of the Embedding's matrix."""
    table = np.asarray(layer.embeddings, np.float32)
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= table.shape[0]):
        raise ValueError(f"Expected token ids in [0, {table.shape[0]}) for Embedding "
                         f"{layer.name!r}; received ids from {tokens.min()} to {tokens.max()}")
    return table[tokens]
