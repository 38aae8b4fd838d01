import contextlib
import fcntl
import os
from pathlib import Path

# Quiet TensorFlow's C++ logging before any test imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from mtl_models import runs  # noqa: E402
from probes.methods.coupling import training_monitor  # noqa: E402

# Small enough to train in seconds (about 5 s a variant on 2 cores), large enough to beat the
# reference accuracies: 12 steps of 16 symbols identify the author with Bayes accuracy ~0.98.
TINY = dict(seq_len=12, features=16, units=8, hidden=16, min_len=5, n_train=2000, n_val=500,
            n_heldout=1000, epochs=10, batch_size=128, learning_rate=1e-2, patience=10, seed=0)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (setup.cfg): one worker per core, at most 4 (each trains and traces its own
    models; past 4 the session fixtures cost more than the workers save)."""
    return max(1, min(4, os.cpu_count() or 1))


# Modules whose module-scoped fixtures (a report, trained runs, a wheel, a Ray cluster...) one
# worker computes for all their tests; every other test goes to whichever worker is free.
_GROUPED = frozenset(f"tests/{p.name}" for p in Path(__file__).parent.glob("test_*.py")
                     if 'scope="module"' in p.read_text())


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's `load` scheduling, but a module in _GROUPED runs on one worker (its
    `loadgroup` mark does not reach pytest 9.2's node ids)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesWithFixtures(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in _GROUPED else nodeid

    return ModulesWithFixtures(config, log)


@contextlib.contextmanager
def _exclusive(path):
    """Holds an exclusive lock on `path` (created) across the session's worker processes."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory, request):
    """A folder of this test session shared by its pytest-xdist workers (each worker's own
    basetemp sits inside the session's), so that what one worker trains the others reuse."""
    if not hasattr(request.config, "workerinput"):  # no workers: this process's basetemp
        return tmp_path_factory.getbasetemp()
    return tmp_path_factory.getbasetemp().parent


@pytest.fixture(scope="session")
def tiny_cache(session_dir):
    path = session_dir / "tiny-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_runs(tiny_cache):
    """Trained tiny concat and separate runs, shared by every test (and worker) that needs one:
    the first worker to ask trains them in the session's fresh cache, the others load them."""
    out = {}
    with _exclusive(tiny_cache / "train.lock"):
        for variant in ("concat", "separate"):
            out[variant], _ = runs.ensure_run(runs.TrainConfig(variant=variant, **TINY),
                                              tiny_cache, monitor=training_monitor)
    return out
