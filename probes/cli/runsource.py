"""A built-in variant's trained run as a probes.model.sources.Source: its held-out pairs as lazy
one-hot inputs (probes.model.onehot.OneHot implements probes.model.lazy's coded one-hot
protocol)."""

from __future__ import annotations

from collections.abc import Callable

from mtl_models import runs
from mtl_models.tweets import INPUTS_OF_SET
from probes.model.onehot import OneHot
from probes.model.sources import DEFAULT_SAMPLES, Source, requested_samples, resolve

# A run's held-out set is extended with generated pairs up to this many (codes: 1.1 kB a pair;
# the one-hot rows are encoded per chunk).
MAX_RUN_SAMPLES = 100_000


def from_run(run: runs.Run, samples: int | None,
             report: Callable[[str], None] = lambda line: None) -> Source:
    """The first `samples` held-out pairs of a trained run (default: 256, or all the saved
    ones if fewer), as lazy one-hot arrays; pairs asked for beyond the saved held-out set are
    generated deterministically (see `Run.heldout`)."""
    if samples is None:
        samples = min(DEFAULT_SAMPLES, run.config.n_heldout)
    samples = requested_samples(samples, MAX_RUN_SAMPLES,
                                f"a run (at most {MAX_RUN_SAMPLES}: the saved held-out pairs, "
                                "then generated ones)")
    tweets, labels = run.heldout(samples, report=report)
    features = run.config.features
    inputs = {name: OneHot(getattr(tweets, field), features)
              for name, field in INPUTS_OF_SET.items()}
    return resolve(run.model(), inputs, labels, name=run.config.variant, run_dir=run.path)
