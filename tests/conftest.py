import os

# Quiet TensorFlow's C++ logging before any test imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from mtl_models import runs  # noqa: E402
from probes.coupling import training_monitor  # noqa: E402

# Small enough to train in seconds, large enough to beat the reference accuracies: 12 steps of
# 16 symbols identify the author with Bayes accuracy ~0.98.
TINY = dict(seq_len=12, features=16, units=8, hidden=16, min_len=5, n_train=2000, n_val=500,
            n_heldout=1000, epochs=10, batch_size=32, learning_rate=1e-2, patience=10, seed=0)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_runs(tiny_cache):
    """Trained tiny concat and separate runs, shared by every test that needs one."""
    out = {}
    for variant in ("concat", "separate"):
        path, trained = runs.train_run(runs.TrainConfig(variant=variant, **TINY), cache=tiny_cache,
                                       monitor=training_monitor)
        assert trained
        out[variant] = runs.load_run(path)
    return out
