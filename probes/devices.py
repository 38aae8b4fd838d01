"""Several devices in one process: a pass split by rows across replicas of tf.distribute.

Inside `use(devices)` every forward pass (probes.forward.compiled_forward), path function
(probes.gradients.path_function) and point scoring (probes.gradients.points_forward) runs
under a `tf.distribute.MirroredStrategy`: the pass's b sample rows are cut into one block of
near-equal rows per replica (the first b mod R blocks one row longer), arguments shared by every
sample (a (1, ...) row, the path nodes) go whole to every replica, each replica runs the same
graph on its block, and the blocks' outputs are concatenated back along the sample axis. Rows
are independent samples, so the numbers are those of one device up to float32 rounding (a
kernel may round a block of 20 rows differently from one of 40); the same pass split the same
way gives bit-identical rows, so an ablated input that a head cannot see still moves it by
exactly 0.0.

The model's weights stay where Keras created them (outside the strategy's scope; the user's
model is never touched): a replica on another GPU reads them over the interconnect on every
pass, a copy of the weights per pass and device (megabytes for the question's models, small
next to a pass's activations).

Devices: "all" is every visible GPU, or with no GPU every logical CPU device; an integer N the
first N of those. With no GPU and fewer logical CPU devices than asked, the CPU is split into N
logical devices (at most the CPU cores) if TensorFlow has not started its devices yet: the same
numbers, no faster, a way to try a multi-device run (and to test this module) without a GPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import weakref

import numpy as np

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("probes_devices", default=None)


@dataclasses.dataclass
class Devices:
    """The devices of a `use` block: `names` (one per replica), the strategy, and what ran on
    them: `passes` (passes split across the replicas) and `seen` (the devices the replicas'
    outputs were placed on in the traced graphs)."""

    names: tuple
    strategy: object
    passes: int = 0
    seen: set = dataclasses.field(default_factory=set)
    # per tf.function, the tf.function that runs its Python body once per replica
    functions: "weakref.WeakKeyDictionary" = dataclasses.field(
        default_factory=weakref.WeakKeyDictionary)


def parse(value) -> int | str | None:
    """None, "all" or a whole number >= 1 (also as text, as --devices gives it)."""
    if value is None or value == "all":
        return value
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError(f"Expected devices 'all' or a whole number >= 1; received {value!r}")
    return int(text)


def split_cpu(n: int) -> bool:
    """Splits the CPU into n logical devices; False when TensorFlow has already started its
    devices (they cannot change then). Must run before the first TensorFlow operation."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError:  # "Virtual devices cannot be modified after being initialized"
        return False
    return True


def visible(n: int | None = None) -> list[str]:
    """The names of the devices "all" means (every GPU, else every logical CPU device); with
    no GPU and fewer CPU devices than n, the CPU split into n first when it still can be (at
    most the CPU cores)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return [d.name for d in tf.config.list_logical_devices("GPU")]
    if n and n <= (os.cpu_count() or 1):
        current = tf.config.get_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0])
        if len(current or [None]) < n:
            split_cpu(n)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


@contextlib.contextmanager
def use(devices=None):
    """Runs the probes inside the block on several devices (see the module docstring).

    Args:
        devices: None or 1: one device, as without the block; "all": every visible GPU (with
            no GPU, every logical CPU device); N: the first N of those.
    Yields:
        The `Devices` in use (None for one device).
    Raises:
        ValueError: N is more than the devices there are.
    """
    devices = parse(devices)
    if devices is None or devices == 1:
        yield None
        return
    import tensorflow as tf

    names = visible(None if devices == "all" else devices)
    n = len(names) if devices == "all" else devices
    if n > len(names):
        cpu = "GPU" not in names[0]
        raise ValueError(f"Expected devices <= {len(names)}, the visible devices"
                         + (f" (no GPU: up to the {os.cpu_count()} CPU cores as logical "
                            "devices, made before TensorFlow starts)" if cpu else "")
                         + f"; received {n}")
    if n == 1:
        yield None
        return
    # No all-reduce is ever asked for (each replica's outputs are gathered as they are):
    # ReductionToOneDevice avoids probing NCCL, which CPU devices do not have.
    strategy = tf.distribute.MirroredStrategy(
        names[:n], cross_device_ops=tf.distribute.ReductionToOneDevice())
    state = Devices(tuple(names[:n]), strategy)
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


def current() -> Devices | None:
    """The `Devices` of the innermost `use` block, None outside one."""
    return _CURRENT.get()


def run(fn, args: tuple, split: tuple, axes):
    """`fn(*args)`, split by sample rows across the current devices' replicas.

    Args:
        fn: a tf.function; its Python body runs once per replica in one traced graph.
        args: its positional arguments; each either an array or a list of arrays.
        split: per argument, whether it holds per-sample rows. Within such an argument the
            arrays with the pass's b rows (the most of any) are cut into blocks; a (1, ...)
            row or an empty (0,) array goes whole to every replica, as do the other
            arguments.
        axes: the sample axis of each output (an int for every output, or one per output,
            applied to everything inside it).
    Returns:
        fn's outputs with each replica's blocks concatenated along the sample axis (outputs
        without that axis, such as an empty placeholder, are the first replica's).
    """
    state = current()
    leaves = [x for a, s in zip(args, split) if s for x in (a if isinstance(a, list) else [a])]
    b = max((np.shape(x)[0] for x in leaves if np.ndim(x)), default=0)
    if state is None or b < len(state.names):
        return fn(*args)
    import tensorflow as tf

    strategy, r = state.strategy, len(state.names)
    edges = np.concatenate([[0], np.cumsum([b // r + (i < b % r) for i in range(r)])])

    def block(ctx):
        i = ctx.replica_id_in_sync_group
        lo, hi = int(edges[i]), int(edges[i + 1])

        def part(x, cut):
            x = x[lo:hi] if cut and np.ndim(x) and np.shape(x)[0] == b else x
            return tf.convert_to_tensor(x)

        with tf.device(state.names[i]):  # each replica's rows are copied to its device once
            return tuple([part(x, s) for x in a] if isinstance(a, list) else part(a, s)
                         for a, s in zip(args, split))

    values = strategy.experimental_distribute_values_from_function(block)
    if fn not in state.functions:
        def replica(*a):  # traced once per replica: records the device its ops were put on
            outs = fn(*a)
            state.seen.update(t.device for t in tf.nest.flatten(outs) if t.device)
            return outs

        state.functions[fn] = tf.function(lambda *a: strategy.run(replica, args=a),
                                          reduce_retracing=True)
    outs = state.functions[fn](*values)
    state.passes += 1
    return _gather(state, outs, axes)


def _gather(state, outs, axes):
    """Each output's per-replica values concatenated along its sample axis."""
    import tensorflow as tf

    def join(value, axis):
        parts = state.strategy.experimental_local_results(value)
        if len(parts) == 1 or parts[0].shape.rank <= axis:
            return parts[0]
        return tf.concat(parts, axis=axis)

    if isinstance(axes, int):
        return tf.nest.map_structure(lambda v: join(v, axes), outs)
    return type(outs)(tf.nest.map_structure(lambda v, a=a: join(v, a), o)
                      for o, a in zip(outs, axes))
