"""The one seam between a Keras model and the rest: its inputs, heads, graph and data.

Its inputs, heads and losses (`data`, `losses`), loading files without running their code
(`files`), the graph and what it lets reach what (`graph`), calling the graph call site by
call site (`graphrun`), token and lazy one-hot inputs (`tokens`, `lazy`, `onehot`), and the one
resolver of what a probe runs on (`sources.resolve`). Imports only `probes.results`.
"""
