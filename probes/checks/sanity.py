"""Sanity check of attribution methods: cascading model-parameter randomisation.

Adebayo et al. (2018), "Sanity checks for saliency maps": re-initialise the model's layers
from the heads down to the inputs, one more at a time, recompute each method's maps and
compare them with the maps of the trained model. A method whose maps stay the same when the
weights they should explain are destroyed explains the input, not the model, and fails.

Here the maps are the signed attributions per time step (probes.methods.attribution with maps=True);
the comparison is Spearman's rank correlation per sample over the steps the sample has (every
element for (N, D) inputs), with a t interval over samples. The verdict judges its magnitude,
|rho| (Adebayo et al. use the absolute rank correlation too): a map that only flips its sign
when the weights are destroyed has not changed, and must not pass. The control "method" `input`
ignores the model entirely (each step's features through one fixed random projection, so that
one-hot steps differ): its correlation is exactly 1 at every step and it is reported failing,
which shows the check can fail. Re-initialised weights are drawn per tensor from a normal
distribution with the trained tensor's mean and standard deviation (seeded), on a clone: the
user's model is never touched.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from probes.model import data as pdata
from probes.results import resultio
from probes.results.protocol import Interval, Result
from probes.results.text import table
from probes.methods.method_maps import (GRADIENT_METHODS, first_rows, maps_of,
                                        method_settings, subset)
from probes.model.graph import called_model, called_view, structure

METHODS = GRADIENT_METHODS + ("input",)
# A method passes a cell when the upper end of the 95% interval of the mean |correlation|
# after the last step is below this, fails when the lower end is above it.
THRESHOLD = 0.5


@resultio.register("sanity")
@dataclasses.dataclass(frozen=True)
class Sanity(Result):
    """Rank correlations between the trained model's maps and the randomised models' maps.

    Attributes:
        heads, inputs, methods: names.
        layers: (L,) the layers re-initialised, in cascade order (step s re-initialises the
            first s of them).
        correlation: (M, L, H, I, N) Spearman's rho per sample after each step; NaN where a
            map is constant over the sample's steps (no ranking to compare).
        structural: (H, I); sample_ids: (N,); params.
    """

    heads: tuple
    inputs: tuple
    methods: tuple
    layers: tuple
    correlation: np.ndarray
    structural: np.ndarray
    sample_ids: np.ndarray
    params: dict

    def interval(self, method: str, step: int, head: str, input: str,  # noqa: A002
                 absolute: bool = False) -> Interval:
        """Mean rho (|rho| with `absolute`) over samples at cascade step `step` (1-based), with
        its t interval."""
        from probes.results.stats import t_interval

        m, h, i = (self.methods.index(method), self.heads.index(head),
                   self.inputs.index(input))
        v = self.correlation[m, step - 1, h, i]
        v = np.abs(v[np.isfinite(v)]) if absolute else v[np.isfinite(v)]
        if v.size == 0:
            return Interval(float("nan"), float("nan"), float("nan"))
        return t_interval(v)

    def verdict(self, method: str, head: str, input: str) -> str:  # noqa: A002
        """"passes", "fails" or "inconclusive" from the mean |rho| after the last step, or
        "structural_zero" (no path: no map to compare) / "no_ranking" (constant maps)."""
        if not self.structural[self.heads.index(head), self.inputs.index(input)]:
            return "structural_zero"
        mean, low, high = self.interval(method, len(self.layers), head, input, absolute=True)
        threshold = self.params.get("threshold", THRESHOLD)
        if not np.isfinite(mean):
            return "no_ranking"
        if np.isfinite(high) and high < threshold:
            return "passes"
        if np.isfinite(low) and low > threshold:
            return "fails"
        return "inconclusive"

    def summary(self) -> dict:
        """{method: {head: {input: verdict}}}, the methods that fail somewhere, and the mean
        rho and |rho| after each step (None where nothing could be compared)."""
        steps = range(1, len(self.layers) + 1)

        def means(absolute):
            return {m: {h: {i: [_finite(self.interval(m, s, h, i, absolute).mean)
                                for s in steps] for i in self.inputs} for h in self.heads}
                    for m in self.methods}

        verdict = {m: {h: {i: self.verdict(m, h, i) for i in self.inputs} for h in self.heads}
                   for m in self.methods}
        return {"verdict": verdict,
                "failing": sorted(m for m in self.methods
                                  if any("fails" in row.values() for row in verdict[m].values())),
                "correlation": means(False), "absolute_correlation": means(True)}

    def table_rows(self) -> tuple[list[str], list[list]]:
        """(header, rows): per method, head and input, the mean rho after each step and the
        verdict."""
        header = ["method", "head", "input"] + [f"+{name}" for name in self.layers] + [
            "verdict"]
        rows = []
        for method in self.methods:
            for head in self.heads:
                for name in self.inputs:
                    cells = [self.interval(method, s, head, name).mean
                             for s in range(1, len(self.layers) + 1)]
                    rows.append([method, head, name]
                                + [f"{c:+.2f}" if np.isfinite(c) else "-" for c in cells]
                                + [self.verdict(method, head, name)])
        return header, rows

    def table(self) -> str:
        """The correlations and verdicts as `probe sanity` prints them."""
        header, rows = self.table_rows()
        lines = [f"Spearman's rho with the trained model's maps after re-initialising each "
                 f"layer in turn (+layer: that layer and every one above it), mean over "
                 f"{len(self.sample_ids)} samples; passes: the 95% interval of the mean |rho| "
                 f"after the last step is below {self.params.get('threshold', THRESHOLD)}",
                 table(header, rows, align="lll" + "r" * len(self.layers) + "l")]
        failing = self.summary()["failing"]
        if failing:
            lines.append(f"FAILS: {', '.join(failing)}: the maps do not depend on the weights "
                         "they should explain")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """`probe sanity --json`: names, and the summary's verdicts and mean correlations."""
        s = self.summary()
        return {"probe": "sanity", "heads": list(self.heads), "inputs": list(self.inputs),
                "methods": list(self.methods), "layers": list(self.layers),
                "samples": len(self.sample_ids), "verdict": s["verdict"],
                "correlation": s["correlation"],
                "absolute_correlation": s["absolute_correlation"]}


def _finite(v) -> float | None:
    return float(v) if v == v else None


def sanity(model, inputs, *, rng: np.random.Generator, methods=METHODS, batch_size: int = 256,
           seed: int | None = None, first: int | None = None, background=None,
           sample_ids=None, labels=None, model_name: str | None = None,
           settings=None) -> Sanity:
    """Cascading randomisation of `model`'s layers with weights, from the heads down.

    Args:
        model: a functional Keras model (cloned, never changed).
        inputs: {input name: (N, ...) array} (or lazy inputs).
        rng: the re-initialised weights, the control's projection and the methods' randomness.
        methods: from METHODS ("input" is the control that ignores the model); maps from the
            zero baseline with `settings`.
        first, background, sample_ids, labels, settings: as for
            probes.checks.faithfulness.faithfulness (a shard's maps are computed in the whole
            run's passes, so its correlations equal the same rows of the unsharded run's).
    Returns:
        A Sanity result; its params hold the settings used.
    """
    methods = tuple(methods)
    settings = method_settings(settings)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"Expected methods from {list(METHODS)}; received {list(methods)}")
    xs = first_rows(pdata.canonical_inputs(model, inputs, "inputs"), first)
    bg, sub_ids, ids, _ = subset(model, xs, background, sample_ids, first)
    where = {"background": bg, "sample_ids": sub_ids}
    names = pdata.input_names(model)
    heads = pdata.output_names(model)
    cascade = cascade_layers(model)
    if not cascade:
        raise ValueError(f"Expected a model with weights to randomise; received "
                         f"{model.name!r} with none")
    projections = [rng.standard_normal(int(np.prod(x.shape[2:])) or 1) for x in xs]
    present = [_present_steps(x) for x in xs]
    # Each method draws the same randomness (smoothgrad's noise) for every model it explains.
    base = int(rng.integers(2**31))
    where = dict(where, settings=settings)
    original = _all_maps(model, xs, methods, projections, base, batch_size, seed, where)
    clone = _clone(model, xs)
    corr = np.full((len(methods), len(cascade), len(heads), len(names), xs[0].shape[0]),
                   np.nan)
    for s, layer in enumerate(cascade):
        for variable in _layer(clone, model, layer).weights:
            w = variable.numpy()
            variable.assign((w.mean() + w.std() * rng.standard_normal(w.shape))
                            .astype(w.dtype))
        maps = _all_maps(clone, xs, methods, projections, base, batch_size, seed, where)
        for m in range(len(methods)):
            for i in range(len(names)):
                corr[m, s, :, i] = _spearman(original[m][i], maps[m][i], present[i])
    reach = structure(model).reach
    return Sanity(heads=heads, inputs=names, methods=methods, layers=tuple(cascade),
                  correlation=corr, structural=reach, sample_ids=ids,
                  params={"methods": list(methods), "seed": seed, "first": first,
                          "batch_size": int(batch_size), "threshold": THRESHOLD,
                          "settings": settings,
                          "reinit": "normal, each tensor's own mean and std",
                          "model": model_name or model.name})


def cascade_layers(model) -> list[str]:
    """Layers with weights, from the outputs down: reverse topological order (a subclassed
    model's own layers, in the reverse of the order it made them: it has no graph)."""
    return [layer.name for layer in reversed((called_model(model) or model).layers)
            if layer.weights]


def _layer(clone, model, name: str):
    """The clone's copy of `model`'s layer `name` (a subclassed model's copy names its layers
    anew: found by position)."""
    inner = called_model(model)
    if inner is None:
        return clone.get_layer(name)
    return called_model(clone).layers[[layer.name for layer in inner.layers].index(name)]


def _clone(model, xs):
    """A copy of `model` with its own weights, equal to the model's (a subclassed model is
    copied from its config and called again on `xs`)."""
    import keras

    inner = called_model(model)
    if inner is None:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone
    copy = keras.models.clone_model(inner)
    clone = called_view(copy, dict(zip(pdata.input_names(model), xs)))
    copy.set_weights(inner.get_weights())
    return clone


def _all_maps(model, xs, methods, projections, base: int, batch_size, seed, where):
    """Per method, per input, (H, N, T) maps (the control: (H, N, T) the same for every
    head); method k draws from the generator seeded [base, k]; `where`: a shard's background
    and sample_ids, and the methods' settings (probes.methods.method_maps.maps_of)."""
    heads = len(model.outputs)
    out = []
    for k, method in enumerate(methods):
        rng = np.random.default_rng([base, k])
        if method == "input":
            out.append([np.broadcast_to(_projected(x, p), (heads,) + x.shape[:2])
                        for x, p in zip(xs, projections)])
            continue
        # (H, N, T, ...) maps of inputs with more axes (images) -> (H, N, T) per axis-1 step.
        out.append([m.reshape(m.shape[:3] + (-1,)).sum(axis=3) if m.ndim > 3 else m
                    for m in maps_of(model, xs, method, rng, batch_size, seed, **where)])
    return out


def _projected(x, p) -> np.ndarray:
    """(N, T) each step's features through the fixed vector p (the control's map)."""
    out = np.empty(x.shape[:2])
    for a in range(0, x.shape[0], 256):
        chunk = np.asarray(x[a:a + 256], np.float64)
        out[a:a + 256] = chunk.reshape(chunk.shape[0], chunk.shape[1], -1) @ p \
            if chunk.ndim > 2 else chunk * p[0]
    return out


def _present_steps(x) -> np.ndarray:
    """(N, T) the steps a sample has (an all-zero step is padding); every element of (N, D)."""
    if x.ndim == 2:
        return np.ones(x.shape, bool)
    out = np.empty(x.shape[:2], bool)
    for a in range(0, x.shape[0], 256):
        chunk = np.asarray(x[a:a + 256])
        out[a:a + 256] = np.any(chunk.reshape(chunk.shape[0], chunk.shape[1], -1) != 0, axis=2)
    return out


def _spearman(a, b, present) -> np.ndarray:
    """(H, N) Spearman's rho of a[h, n] and b[h, n] over the present steps; NaN where either
    is constant there."""
    from scipy.stats import rankdata

    h_n, n = a.shape[0], a.shape[1]
    out = np.full((h_n, n), np.nan)
    for k in range(n):
        keep = present[k]
        if keep.sum() < 3:
            continue
        ra = rankdata(a[:, k][:, keep], axis=1)
        rb = rankdata(b[:, k][:, keep], axis=1)
        for h in range(h_n):
            x, y = ra[h] - ra[h].mean(), rb[h] - rb[h].mean()
            denom = np.sqrt((x @ x) * (y @ y))
            if denom > 0:
                out[h, k] = float(x @ y / denom)
    return out
