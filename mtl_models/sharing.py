"""`probe sharing`: train the tied, untied and single-task arms over sizes and seeds.

Every arm is an ordinary training run (mtl_models/runs.py), cached by its configuration, so a
second call reuses every finished run and an interrupted sweep resumes where it stopped. Within
one size and seed the arms differ only in what the issue asks about: the variant (tied or its
untied counterpart) and the loss weights (both tasks, or one).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Callable

import numpy as np

from mtl_models import runs
from mtl_models.variants import HEADS, TIED
from probes.results.transfer import ARMS, REFERENCE_SOURCES, SharingResult

UNTIED = {tied: untied for untied, tied in TIED.items()}
# Tasks each head of `separate` can solve from its own tweet, and that need the same property
# of the text (its author): the case where a shared encoder should help.
DEFAULT_TASKS = ("group_a", "group_b")
DEFAULT_SIZES = (30, 100, 300)
DEFAULT_SEEDS = 4
# The sweep's world: authors harder to tell apart than the question's style 0.7, where one
# tweet gives its author away so completely that 10 training pairs reach 0.98 held-out accuracy
# in every arm and there is nothing for sharing to add.
DEFAULT_STYLE = 0.3


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How every arm is trained: the same number of optimizer steps at every size, so a small
    training set is cycled more often rather than seen for fewer steps.

    200 steps of 32 pairs (6,400 pairs seen), validated every 20 on 128 pairs: 15-25 s per
    full-size run on 2 CPU cores.
    """

    batch_size: int = 32
    steps_per_epoch: int = 20
    epochs: int = 10
    patience: int = 4
    n_val: int = 128
    n_heldout: int = 1000
    learning_rate: float = 3e-3
    monitor_every: int = 50


def arm_configs(variant: str, tasks, size: int, seed: int, base: runs.TrainConfig,
                schedule: Schedule, labelled=(None, None)) -> list[tuple[str, str | None,
                                                                          runs.TrainConfig]]:
    """(arm, head trained alone or None, config) of every run at one size and seed."""
    if variant not in UNTIED:
        raise ValueError(f"Expected a variant with an untied counterpart {sorted(UNTIED)}; "
                         f"received {variant!r}")
    common = dataclasses.replace(
        base, variant=variant, tasks=tuple(tasks), n_train=size, seed=seed,
        batch_size=schedule.batch_size, steps_per_epoch=schedule.steps_per_epoch,
        epochs=schedule.epochs, patience=schedule.patience, n_val=schedule.n_val,
        n_heldout=schedule.n_heldout, learning_rate=schedule.learning_rate,
        labelled=tuple(None if n is None else min(n, size) for n in labelled))
    out = [("tied", None, common),
           ("untied", None, dataclasses.replace(common, variant=UNTIED[variant]))]
    for h, head in enumerate(HEADS):
        weights = tuple(1.0 if k == h else 0.0 for k in range(len(HEADS)))
        out.append(("single", head, dataclasses.replace(common, loss_weights=weights)))
    return out


def sharing(variant: str = "separate", *, tasks=DEFAULT_TASKS, sizes=DEFAULT_SIZES,
            seeds: int | tuple = DEFAULT_SEEDS, labelled=(None, None),
            base: runs.TrainConfig | None = None, schedule: Schedule = Schedule(),
            cache: Path | None = None, monitor: Callable | None = None,
            report: Callable[[str], None] = lambda line: None) -> SharingResult:
    """Trains (or reuses) every arm and collects the held-out accuracies.

    Args:
        variant: the tied model, "separate" or "concat"; its untied counterpart is the other
            arm.
        tasks: task of head_1 and head_2.
        sizes: training-set sizes (pairs).
        seeds: number of seeds (0..n-1) or the seeds themselves.
        labelled: per head, at most this many training pairs carry its label (None = all): a
            scarce task beside a plentiful one.
        base: the rest of the training configuration (model and world sizes) [default: the
            question's model in a world of style DEFAULT_STYLE].
        schedule: the optimizer schedule every arm uses.
        monitor: a training monitor factory (probes.methods.coupling.training_monitor) for the tied
            arm: the gradient cosine over training.
        report: called with progress lines.
    Returns:
        A SharingResult with accuracies of shape (heads, sizes, seeds) per arm.
    """
    base = base or runs.TrainConfig(style=DEFAULT_STYLE)
    sizes = tuple(int(s) for s in sizes)
    seeds = tuple(range(seeds)) if isinstance(seeds, (int, np.integer)) else tuple(seeds)
    if not sizes or min(sizes) < 1 or not seeds:
        raise ValueError(f"Expected at least one size >= 1 and one seed; received sizes "
                         f"{list(sizes)}, seeds {list(seeds)}")
    shape = (len(HEADS), len(sizes), len(seeds))
    accuracy = {arm: np.full(shape, np.nan) for arm in ARMS}
    reference = {source: np.full(shape, np.nan) for source in REFERENCE_SOURCES}
    cosine = [[[] for _ in seeds] for _ in sizes]
    ran = []
    plan = [(s, r, arm) for s in range(len(sizes)) for r in range(len(seeds))
            for arm in arm_configs(variant, tasks, sizes[s], seeds[r], base, schedule, labelled)]
    started = time.perf_counter()
    for k, (s, r, (arm, alone, config)) in enumerate(plan, 1):
        label = f"{arm}{f' ({alone} alone)' if alone else ''}, {sizes[s]} pairs, seed {seeds[r]}"
        cached = runs.is_complete(runs.run_dir_for(config, cache))
        report(f"[{k}/{len(plan)}] {label}: {'cached' if cached else 'training'} "
               f"[{time.perf_counter() - started:.0f}s]")
        factory = None
        if monitor is not None and arm == "tied":
            factory = functools.partial(monitor, every=schedule.monitor_every)
        path, _ = runs.train_run(config, cache=cache, monitor=factory,
                                 report=lambda line: report(f"    {line}"))
        run = runs.load_run(path)
        for h, head in enumerate(HEADS):
            if alone is None or alone == head:
                accuracy[arm][h, s, r] = run.accuracy["heads"][head]["accuracy"]
            if arm == "tied":
                for source in REFERENCE_SOURCES:
                    reference[source][h, s, r] = run.accuracy["heads"][head]["reference"][source]
        if arm == "tied":
            record = run.taskgrads()
            if record is not None:
                cosine[s][r] = [[rec["step"], rec["cosine"][0][0][1]]
                                for rec in record["records"]]
        ran.append({"arm": arm, "head": alone, "size": sizes[s], "seed": seeds[r],
                    "run": str(path), "seconds": run.history["seconds"]})
    return SharingResult(variant=variant, tasks=tuple(tasks), heads=HEADS, sizes=sizes,
                         seeds=seeds, accuracy=accuracy, reference=reference, cosine=cosine,
                         labelled=tuple(labelled), runs=ran,
                         params={"schedule": dataclasses.asdict(schedule),
                                 "base": {k: v for k, v in dataclasses.asdict(base).items()
                                          if k in ("seq_len", "features", "units", "n_authors",
                                                   "n_group", "min_len", "style",
                                                   "same_rate")}})
