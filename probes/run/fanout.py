"""One per-sample probe fanned out as Ray tasks, one per shard, and merged back.

An existing engine for the fan-out rather than a scheduler of our own (pip install
'mtl-probe[ray]'): Ray places the tasks on its workers, on this machine or on a cluster, and
carries the objects. The model travels as the bytes of a .keras file (no shared filesystem; the
worker loads it in safe mode, so no code from the file runs unless the caller passed `unsafe`),
the inputs and labels once through Ray's object store, and each task runs
probes.run.shards.run_shard on one contiguous block of the samples, every sample as background.
probes.run.shards.merge puts the blocks back, so the result equals the unsharded run's bit for bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import tempfile
import time
from pathlib import Path

DEFAULT_SHARDS = 4  # when the cluster does not say how many CPUs it has
CONNECT_TIMEOUT_S = 10.0  # Ray itself retries an unreachable address for minutes
# A worker process keeps the last model it loaded (digest of its file -> model), so the
# next shard of the same run skips the load and reuses the passes TensorFlow traced for it.
_LOADED: dict = {}


def require_ray():
    """The ray module, or a one-line ValueError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ValueError("Expected the optional package ray for --ray (pip install "
                         f"'mtl-probe[ray]'); received ImportError: {err}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None = None):
    """Ray for the duration of the block: the one this process already initialised, else
    `ray.init(address)`, shut down on leaving (a local Ray stopped, a cluster left).

    Args:
        address: "HOST:PORT" of a cluster's head (`ray start --head`), "ray://HOST:10001",
            "auto" (the cluster `ray start` began on this machine), "local" (a new local Ray),
            or None: RAY_ADDRESS or a `ray start` cluster on this machine if there is one,
            else a new local Ray of every CPU.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    _reachable(address)
    try:  # the token notice of a new local Ray would bury the command's progress
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
                 logging_level=logging.ERROR if address in (None, "local") else logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ValueError(f"Expected a Ray to connect to at {address or 'this machine'}; "
                         f"received {type(err).__name__}: {_first_line(err)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_on_ray(probe: str, model, inputs: dict, *, shards: int | None = None, labels=None,
               seed: int = 0, model_name: str | None = None, address: str | None = None,
               params: dict | None = None, unsafe: bool = False, custom_modules=(),
               num_cpus: float = 1, report=lambda line: None):
    """Registered per-sample `probe` on every sample, its shards run as Ray tasks and merged.

    Args:
        probe: a per-sample probe (probes.run.shards.FAMILIES; integrated gradients with a fixed
            `steps` in `params`).
        model: a functional Keras model (shipped as .keras bytes).
        inputs: {input name: (N, ...) array or lazy input}; labels: {head: (N,)} or None.
        shards: tasks to split the N samples into [default: the cluster's CPUs / `num_cpus`,
            or 4, at most N].
        address: the Ray to use (see `connect`); an initialised Ray of this process wins.
        params: the probe's parameters besides the seed, as for the unsharded run.
        unsafe, custom_modules: as probes.model.files.load_model, for the workers' copy of the
            model (a module given as a .py file travels as its bytes).
        num_cpus: Ray CPUs each task reserves.
        report: called with a progress line per shard done.
    Returns:
        The unsharded run's result (probes.run.shards.merge).
    """
    params = dict(params or {})
    total = _check(probe, inputs, shards, params)
    model_file, modules = _model_file(model), _module_files(custom_modules)
    with connect(address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = min(shards or int(cpus // num_cpus) or DEFAULT_SHARDS, total)
        task = ray.remote(_shard).options(num_cpus=num_cpus, name=f"mtl-probe {probe}")
        shared = [ray.put(model_file), modules, probe, ray.put(inputs), ray.put(labels), seed,
                  model_name, params, unsafe]
        report(f"ray: {probe} on {total} samples as {n} tasks ({cpus} CPUs in the cluster) ...")
        pending = {task.remote(*shared, shard=(k, n)): k for k in range(1, n + 1)}
        parts = []
        try:
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                k = pending.pop(ref)
                part, seconds = _result(ray, ref)
                parts.append(part)
                report(f"ray: shard {k}/{n} done ({seconds:.1f} s)")
        finally:
            for ref in pending:  # a failed shard ends the run: free the workers
                ray.cancel(ref)
    from probes.run.shards import merge

    return merge(parts)


def _check(probe: str, inputs: dict, shards, params: dict) -> int:
    """The sample count, after the checks a shard would fail on (before Ray starts)."""
    from probes.run.shards import check, rows

    check(probe, params)
    if not inputs:
        raise ValueError("Expected at least one input array; received none")
    total = len(next(iter(inputs.values())))
    if shards is not None:
        if int(shards) < 1:
            raise ValueError(f"Expected shards >= 1; received {shards}")
        rows(total, 1, int(shards))  # at most one shard per sample
    return total


def _model_file(model) -> bytes:
    """The model as the bytes of a .keras file."""
    with tempfile.TemporaryDirectory(prefix="mtl-probe-ray-") as tmp:
        path = Path(tmp) / "model.keras"
        try:
            model.save(path)
        except Exception as err:  # noqa: BLE001 (Keras raises many types for unsavable layers)
            raise ValueError(f"Expected a model Keras can save as .keras, to ship to the Ray "
                             f"workers; received {type(err).__name__}: {_first_line(err)}"
                             ) from None
        return path.read_bytes()


def _module_files(custom_modules) -> tuple:
    """--custom-module specs for the workers: (name, None) for a module they import, (file
    name, bytes) for a .py file (no shared filesystem)."""
    out = []
    for spec in custom_modules:
        spec = str(spec)
        path = Path(spec)
        out.append((path.name, path.read_bytes()) if spec.endswith(".py") and path.is_file()
                   else (spec, None))
    return tuple(out)


def _reachable(address: str | None) -> None:
    """Raises ValueError unless a cluster address answers on its port within a few seconds."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Expected a Ray address HOST:PORT (e.g. 10.0.0.1:6379), "
                         f"ray://HOST:PORT, auto or local; received {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ValueError(f"Expected a reachable Ray cluster at {address} (`ray start --head` "
                         f"there, port open); received {type(err).__name__}: "
                         f"{err.strerror or err}") from None


def _result(ray, ref):
    """(partial result, seconds) of a finished task; the task's ValueError as a ValueError
    (one line), a lost worker as a ValueError, a bug's traceback as it is."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, ValueError):
            raise ValueError(str(cause)) from None
        if isinstance(cause, ModuleNotFoundError):
            raise ValueError(f"Expected mtl-probe installed on every Ray worker; received "
                             f"ModuleNotFoundError: {cause}") from None
        raise
    except ray.exceptions.RayError as err:
        raise ValueError(f"Expected the Ray workers to finish every shard; received "
                         f"{type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _shard(model_file: bytes, modules: tuple, probe: str, inputs: dict, labels, seed: int,
           model_name, params: dict, unsafe: bool, *, shard):
    """A Ray task: (probes.run.shards.run_shard's partial result, seconds taken) on a worker."""
    started = time.perf_counter()
    from probes.engine.quiet import import_tensorflow

    import_tensorflow()
    from probes.engine import backends
    from probes.engine.forward import op_message
    from probes.run.shards import run_shard

    model = _load(model_file, modules, unsafe)
    try:
        res = run_shard(probe, model, inputs, shard=shard, labels=labels, seed=seed,
                        model_name=model_name, **params)
    except backends.get().errors() as err:  # as the command says it for a plain run
        raise ValueError(f"Expected inputs the model can run on; received an error from the "
                         f"model: {op_message(err)}") from None
    return res, time.perf_counter() - started


def _load(model_file: bytes, modules: tuple, unsafe: bool):
    """The model from its .keras bytes, in safe mode unless `unsafe` (kept for the next
    shard: _LOADED)."""
    key = (hashlib.sha256(model_file).hexdigest(), modules, unsafe)
    if key not in _LOADED:
        from probes.model.files import load_model

        with tempfile.TemporaryDirectory(prefix="mtl-probe-ray-") as tmp:
            specs = []
            for i, (name, text) in enumerate(modules):
                if text is None:
                    specs.append(name)
                    continue
                path = Path(tmp) / str(i) / name  # its own folder: two files may share a name
                path.parent.mkdir()
                path.write_bytes(text)
                specs.append(str(path))
            path = Path(tmp) / "model.keras"
            path.write_bytes(model_file)
            model = load_model(path, unsafe=unsafe, custom_modules=specs)
        _LOADED.clear()
        _LOADED[key] = model
    return _LOADED[key]
