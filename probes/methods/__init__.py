"""The probes: ablation, gradient attribution, the shared weights, the paths.

Ablation (`ablation`), gradient attribution with its baselines and the checks that keep a
missing gradient from becoming a verdict (`attribution`, `baselines`, `attribution_checks`,
`method_maps`), the tasks' gradients on the shared weights and what a step on one moves
(`taskgrads`, `coupling`), and the paths through a concatenation (`paths`). Each returns a
result of `probes.results`; none reads files or prints.
"""
