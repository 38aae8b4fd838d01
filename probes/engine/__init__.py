"""Compiled passes over a model: forward, gradients, the one-hot fast path, devices.

Forward passes in chunks and per call site (`forward`), gradients along paths (`gradients`),
the exact fast path for one-hot inputs and its recurrent gradients (`onehot_path`,
`onehot_grads`, `projected`, `recurrent_grads`), several devices in one process (`devices`)
and a quiet TensorFlow import (`quiet`). Imports `probes.model` and `probes.results` only.
"""
