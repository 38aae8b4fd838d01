"""The attribution maps that the checks of attribution methods rank (probes.checks.faithfulness) and
compare across randomised models (probes.checks.sanity), and where a check's samples sit in its run
(a shard's rows, probes.run.shards)."""

from __future__ import annotations

import numpy as np

from probes.model import data as pdata

GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
# Every method's maps come from the zero baseline (what deletion removes to) with fixed costs:
# integrated gradients' automatic steps go up to 128 nodes on concat from the zero tweet, and a
# ranking needs no 1% completeness gap. 8 Gauss-Legendre nodes, as in the report's own
# integrated gradients.
SETTINGS = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"noise_samples": 8}}


def method_settings(settings=None) -> dict:
    """The methods' settings a check runs with: SETTINGS, with `settings` ({method: {name:
    value}}, e.g. {"integrated_gradients": {"steps": 16}}) in place of the defaults it names.

    Raises:
        ValueError: a method or setting SETTINGS does not have, or a value that is not a
            positive integer.
    """
    out = {method: dict(values) for method, values in SETTINGS.items()}
    for method, values in (settings or {}).items():
        if method not in SETTINGS or not isinstance(values, dict):
            raise ValueError(f"Expected settings of {list(SETTINGS)}; received {method!r}")
        for name, value in values.items():
            if name not in SETTINGS[method]:
                raise ValueError(f"Expected a setting of {method} in "
                                 f"{list(SETTINGS[method])}; received {name!r}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {method} {name} to be a positive integer; "
                                 f"received {value!r}")
            out[method][name] = value
    return out


def maps_of(model, xs, method, rng, batch_size, seed, background=None, sample_ids=None,
            settings=SETTINGS):
    """The signed maps of a gradient method (probes.methods.attribution, maps=True) as the checks
    compute them: zero baseline, logit space, `settings` (`method_settings`), of a shard's
    samples with `background` and `sample_ids` (as probes.methods.attribution.attribute takes
    them)."""
    from probes.methods.attribution import attribute

    return attribute(model, xs, rng=rng, method=method, maps=True, baseline="zero",
                     batch_size=batch_size, seed=seed, target="predicted",
                     background=background, sample_ids=sample_ids,
                     **settings.get(method, {})).maps


def subset(model, xs, background, sample_ids, first):
    """Where the samples `xs` sit in the run: (background, sample_ids) to pass on to the
    probes this one calls (None, None for a run over `xs` alone), and (ids, total), their
    rows among the run's `total` samples (a shard's, probes.run.shards).

    Raises:
        ValueError: `first` with sample ids (a shard's samples are the whole run's rows).
    """
    n = xs[0].shape[0]
    if background is None and sample_ids is None:
        return None, None, np.arange(n), n
    if first is not None:
        raise ValueError(f"Expected no first= with background or sample_ids (a shard's "
                         f"samples are rows of the whole run); received first={first}")
    bg = pdata.canonical_inputs(model, xs if background is None else background,
                                "background")
    ids = pdata.canonical_sample_ids(sample_ids, n, len(bg[0]))
    return bg, sample_ids if sample_ids is None else ids, ids, (
        n if sample_ids is None else len(bg[0]))


def first_rows(xs, first):
    """The first `first` rows of every input (all of them for None)."""
    if first is None:
        return xs
    if int(first) < 1:
        raise ValueError(f"Expected first >= 1 samples; received {first}")
    return [x[:int(first)] for x in xs]
