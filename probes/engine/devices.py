"""Several devices in one process: a pass split by rows across replicas of tf.distribute.

Inside `use(devices)` every forward pass (probes.engine.forward.compiled_forward), path function
(probes.engine.gradients.path_function) and point scoring (probes.engine.gradients.points_forward)
runs under a `tf.distribute.MirroredStrategy`: the pass's b sample rows are cut into one block of
near-equal rows per replica (the first b mod R blocks one row longer), arguments shared by every
sample (a (1, ...) row, the path nodes) go whole to every replica, each replica runs the same graph
on its block, and the blocks' outputs are concatenated back along the sample axis. Rows are
independent samples, so the numbers are those of one device up to float32 rounding (a kernel may
round a block of 20 rows differently from one of 40); the same pass split the same way gives
bit-identical rows, so an ablated input that a head cannot see still moves it by exactly 0.0.

The model's weights stay where Keras created them (outside the strategy's scope; the user's
model is never touched): a replica on another GPU reads them over the interconnect on every
pass, a copy of the weights per pass and device (megabytes for the question's models, small
next to a pass's activations).

Under another Keras backend (probes.engine.backends) the probes run on its default device, and
asking for several is a ValueError.

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
    # per tf.function, the tf.function that calls it once per replica (they, and the models
    # their traces hold, go with the block)
    functions: dict = dataclasses.field(default_factory=dict)


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
        ValueError: N is more than the devices there are, or the Keras backend is not
            TensorFlow (passes run on its default device).
    """
    devices = parse(devices)
    if devices is None or devices == 1:
        yield None
        return
    from probes.engine import backends

    if backends.name() != "tensorflow":
        raise ValueError(f"Expected one device under the Keras backend {backends.name()!r} "
                         "(several devices split passes with tf.distribute: TensorFlow only); "
                         f"received devices={devices!r}")
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
        fn: a tf.function; one tf.function of the block calls it once per replica, each
            call under its replica's device (the ops of fn run there).
        args: its positional arguments: arrays, or lists and tuples of them (other values,
            such as Python flags, are passed as they are and are part of the trace).
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
    if state is None:
        return fn(*args)
    import tensorflow as tf

    flat = tf.nest.flatten(list(args))
    cuts = tf.nest.flatten([tf.nest.map_structure(lambda _, s=s: s, a)
                            for a, s in zip(args, split)])
    arrays = tuple(hasattr(x, "shape") and hasattr(x, "dtype") for x in flat)
    b = max((x.shape[0] for x, c, a in zip(flat, cuts, arrays) if c and a and len(x.shape)),
            default=0)
    r = len(state.names)
    if b < r:
        return fn(*args)
    heights = [b // r + (i < b % r) for i in range(r)]
    edges = np.concatenate([[0], np.cumsum(heights)])
    cut = [c and a and len(x.shape) > 0 and x.shape[0] == b
           for x, c, a in zip(flat, cuts, arrays)]

    def block(ctx):
        i = ctx.replica_id_in_sync_group
        with tf.device(state.names[i]):  # each replica's rows are copied to its device once
            return tuple(tf.convert_to_tensor(x[edges[i]:edges[i + 1]] if k else x)
                         for x, k, a in zip(flat, cut, arrays) if a)

    skeleton = tf.nest.map_structure(lambda _: 0, list(args))
    static = tuple(x for x, a in zip(flat, arrays) if not a)
    key = (fn, static, str(skeleton), tuple((tuple(x.shape), k) if a else None
                                            for x, k, a in zip(flat, cut, arrays)))
    if key not in state.functions:
        # fn traced once per block height, here outside every device scope (a trace inside
        # a replica's would be one per device); each replica calls it under its device.
        traced = {}
        for n in set(heights):
            specs = [tf.TensorSpec((n,) + tuple(x.shape[1:]) if k else tuple(x.shape),
                                   tf.as_dtype(x.dtype)) if a else x
                     for x, k, a in zip(flat, cut, arrays)]
            traced[n] = fn.get_concrete_function(*tf.nest.pack_sequence_as(skeleton, specs))
        first = [k for k, a in zip(cut, arrays) if a].index(True)  # a cut array: the height

        def replica(*values):  # traced once per replica: records the device of its outputs
            given, fixed = iter(values), iter(static)
            leaves = [next(given) if a else next(fixed) for a in arrays]
            outs = traced[values[first].shape[0]](*tf.nest.pack_sequence_as(skeleton, leaves))
            state.seen.update(t.device for t in tf.nest.flatten(outs) if t.device)
            return outs

        strategy = state.strategy
        # One graph for all replicas: its executor runs them at once (an eager
        # strategy.run runs them one after the other). autograph=False: nothing to convert.
        state.functions[key] = tf.function(lambda *v: strategy.run(replica, args=v),
                                           autograph=False)
    outs = state.functions[key](*state.strategy.experimental_distribute_values_from_function(
        block))
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
