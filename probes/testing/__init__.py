"""Dependency assertions and contracts for a user's tests: which head may use which input.

The assertions (here), TOML contracts for `probe check` and CI (`contract`), and the pytest
plugin (`pytest_plugin`: the `probed` fixture and one probe cache per session).

    from probes.testing import assert_depends, assert_independent, assert_no_path

    assert_no_path(model, "head_1", "tweet_b")                 # the graph decides: no data
    assert_independent(model, data, "head_1", "tweet_b")       # shown, not just not shown
    assert_depends(model, data, "head_2", "tweet_b")

Each assertion runs a probe (default: shuffle ablation; any ablation or attribution method by
`method`, others refused in one line that lists these) on the first `samples` rows with `seed`, and
decides from its verdict at share threshold `delta` and family-wise `alpha` (probes.results.stats).
`independent` holds for `zero`, `structural_zero` and `negligible` (the share significantly below
delta); `inconclusive` fails with the share's interval and an estimate of the samples that would
decide it. A failure prints the expected and measured matrices side by side. Results are cached by
the fingerprint of model, data, probe and parameters (a `ProbeCache`; the pytest plugin gives one
per test session), so a dozen assertions on one model run the probe once.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from probes.results.text import table

INDEPENDENT = ("zero", "structural_zero", "negligible")
CLAUSES = ("depends", "independent", "no_path")
DEFAULTS = {"method": "ablation/shuffle", "samples": 256, "seed": 0, "delta": 0.05,
            "alpha": 0.05, "batch_size": 256}


class ProbeCache:
    """Probe results by the fingerprint of (model, data, probe, parameters): a result is
    computed once and reused by every assertion on the same model and data. `runs` counts
    the probes actually computed. At most `size` results are kept (least recent dropped)."""

    def __init__(self, size: int = 32):
        self.size, self.runs = size, 0
        self._results: collections.OrderedDict = collections.OrderedDict()

    def result(self, model, data, *, labels=None, method: str, seed: int, samples,
               batch_size: int):
        from probes import api
        from probes.model.sources import resolve
        from probes.results.fingerprint import fingerprint

        src = resolve(model, data, labels, samples)
        params = {"seed": seed, "batch_size": batch_size}
        key = fingerprint(src.model, src.inputs, method, params, labels=src.labels)["key"]
        if key not in self._results:
            self.runs += 1
            self._results[key] = api.run_on(src, method, seed, {"batch_size": batch_size})
            while len(self._results) > self.size:
                self._results.popitem(last=False)
        self._results.move_to_end(key)
        return self._results[key]


DEFAULT_CACHE = ProbeCache()


def judged_methods() -> list[str]:
    """The registered probes whose results the assertions judge: those with a verdict per head
    and input (every ablation and attribution method)."""
    from probes.run.registry import PROBES

    return [name for name in PROBES if name.startswith(("ablation/", "attribution/"))]


def check_method(method: str) -> None:
    """ValueError unless the assertions can judge `method`'s result (judged_methods)."""
    if method not in judged_methods():
        raise ValueError(f"Expected a method with a verdict per head and input, one of "
                         f"{', '.join(judged_methods())}; received {method!r}")


def measure(model, data, *, cache: ProbeCache | None = None, labels=None, **settings):
    """(result, summary) of the contract's probe with `settings` (DEFAULTS for the rest)."""
    from probes.results.stats import summarize

    s = {**DEFAULTS, **settings}
    check_method(s["method"])
    res = (cache or DEFAULT_CACHE).result(model, data, labels=labels, method=s["method"],
                                          seed=s["seed"], samples=s["samples"],
                                          batch_size=s["batch_size"])
    return res, summarize(res, delta=s["delta"], alpha=s["alpha"])


def holds(clause: str, verdict: str) -> bool:
    """Whether a measured verdict satisfies a clause ("depends", "independent", "no_path")."""
    if clause == "depends":
        return verdict == "depends"
    if clause == "independent":
        return verdict in INDEPENDENT
    if clause == "no_path":
        return verdict == "structural_zero"
    raise ValueError(f"Expected a clause in {list(CLAUSES)}; received {clause!r}")


def evidence(res, summary, head: str, input: str) -> str:  # noqa: A002 (Keras' word)
    """One cell's evidence: verdict, share and interval, and why it is inconclusive."""
    h, i = res.cell(head, input)
    v = str(summary.verdict[h, i])
    text = (f"{v} (share {summary.share[h, i]:.3f} [{summary.share_ci_low[h, i]:.3f}, "
            f"{summary.share_ci_high[h, i]:.3f}])")
    if v == "inconclusive":
        text += f"; {samples_needed(res.samples, summary, h, i, effects=res.effects[h])}"
    return text


def samples_needed(n: int, summary, h: int, i: int, power: float = 0.8, *,
                   effects=None, draws: int = 40) -> str:
    """How many samples would decide an inconclusive cell, from the deciding test. Its
    statistic T (the share's log odds against delta's, over their standard error) grows as
    sqrt(n) at the measured share and spread; the claim needs T beyond the normal quantile of
    Holm's smallest level alpha / (tested cells) with probability `power`: n' = n ((z(1 -
    alpha / cells) + z(power)) / T)^2. With the head's `effects` (I, N), n' is then checked
    by simulation: `draws` data sets of n' samples drawn from these, decided as `summarize`
    would, n' raised by 1.25 x until the claim comes in `power` of them (at most 8 times)."""
    from scipy.special import ndtri

    settings = summary.settings
    if summary.reason is not None and summary.reason[h, i]:
        return f"{summary.reason[h, i]}: more samples may carry the claim, not a count known"
    t = np.nan if summary.statistic is None else float(summary.statistic[h, i])
    if not np.isfinite(t) or t == 0:
        return "the share sits on the threshold: no sample count decides it"
    cells = max(int(settings.get("tested_cells", 1)), 1)
    count = max(math.ceil(n * ((ndtri(1 - settings["alpha"] / cells) + ndtri(power)) / t) ** 2),
                n + 1)
    side, claim = ("above", "depends") if t > 0 else ("below", "negligible")
    if effects is not None:
        from probes.results.stats import cell_verdicts

        head = np.asarray(effects, dtype=float)
        # Holm over the head only in the simulation: its level scaled as over every cell.
        alpha = settings["alpha"] * head.shape[0] / max(cells, head.shape[0])
        rng = np.random.default_rng(0)
        for _ in range(8):
            idx = rng.integers(head.shape[1], size=(draws, count))  # (draws, n')
            v = cell_verdicts(np.moveaxis(head[:, idx], 0, 1), settings["delta"], alpha)
            if np.mean(v[:, i] == claim) >= power:
                break
            count = math.ceil(1.25 * count)
    return f"about {count} samples would show the share {side} {settings['delta']} (now {n})"


def clauses(expected: dict) -> list[tuple[str, str, str]]:
    """(head, input, clause) for {head: {input: clause or [clauses]}}, in the given order."""
    out = []
    for head, row in expected.items():
        for name, given in row.items():
            for clause in ([given] if isinstance(given, str) else given):
                if clause not in CLAUSES:
                    raise ValueError(f"Expected a clause in {list(CLAUSES)} for {head!r} <- "
                                     f"{name!r}; received {clause!r}")
                out.append((head, name, clause))
    return out


def check(model, data, expected: dict, *, cache=None, labels=None, **settings) -> list[dict]:
    """Every clause of `expected` ({head: {input: clause or [clauses]}}) against the
    measurements: a row per clause with head, input, clause, verdict, share, interval, holds
    and evidence. Only `no_path` clauses: the graph decides and nothing runs."""
    from probes import api

    wanted = clauses(expected)
    # no_path clauses read the graph (a subclassed model has none: api.structure says so)
    graph = api.structure(model) if any(c == "no_path" for _, _, c in wanted) else None
    if any(c != "no_path" for _, _, c in wanted):
        res, summary = measure(model, data, cache=cache, labels=labels, **settings)
    else:
        res, summary = graph, None
    reach = None if graph is None else graph.reach
    rows = []
    for head, name, clause in wanted:
        if head not in res.heads or name not in res.inputs:
            raise ValueError(f"Expected heads {list(res.heads)} and inputs {list(res.inputs)}; "
                             f"received the clause {head!r} <- {name!r}")
        h, i = res.heads.index(head), res.inputs.index(name)
        if clause == "no_path":
            verdict = "path" if reach[h, i] else "structural_zero"
            measured = {"share": None, "interval": None,
                        "evidence": "the graph has a path" if reach[h, i]
                        else "no path in the graph"}
        else:
            verdict = str(summary.verdict[h, i])
            measured = {"share": float(summary.share[h, i]),
                        "interval": [float(summary.share_ci_low[h, i]),
                                     float(summary.share_ci_high[h, i])],
                        "evidence": evidence(res, summary, head, name)}
        rows.append({"head": head, "input": name, "clause": clause, "verdict": verdict,
                     "holds": holds(clause, verdict), **measured})
    return rows


def _fail(rows, settings) -> None:
    failed = [r for r in rows if not r["holds"]]
    if not failed:
        return
    s = {**DEFAULTS, **settings}
    lines = [f"{r['head']} <- {r['input']}: expected {r['clause']}, measured {r['evidence']}"
             for r in failed]
    lines.append(f"({s['method']}, {s['samples']} samples, seed {s['seed']}, share threshold "
                 f"{s['delta']}, alpha {s['alpha']})")
    lines.append(side_by_side(rows))
    raise AssertionError("\n".join(lines))


def side_by_side(rows) -> str:
    """The expected and measured cells of every clause, the failing ones marked."""
    return table(["head", "input", "expected", "measured", "share [95% CI]", ""],
                 [[r["head"], r["input"], r["clause"], r["verdict"],
                   "-" if r["share"] is None else
                   f"{r['share']:.3f} [{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]",
                   "" if r["holds"] else "<-- FAILS"] for r in rows], align="llllrl")


def assert_depends(model, data, head: str, input: str, *, cache=None, labels=None,  # noqa: A002
                   **settings) -> None:
    """The head depends on the input: its share of the head's dependence is significantly
    above `delta` (verdict `depends`)."""
    _fail(check(model, data, {head: {input: "depends"}}, cache=cache, labels=labels,
                **settings), settings)


def assert_independent(model, data, head: str, input: str, *, cache=None,  # noqa: A002
                       labels=None, **settings) -> None:
    """The head is shown independent of the input: verdict `zero`, `structural_zero` or
    `negligible`. `inconclusive` fails, with the share's interval and the samples needed."""
    _fail(check(model, data, {head: {input: "independent"}}, cache=cache, labels=labels,
                **settings), settings)


def assert_no_path(model, head: str, input: str) -> None:  # noqa: A002
    """The graph has no path from the input to the head (per call site); no data needed."""
    _fail(check(model, None, {head: {input: "no_path"}}), {})


def assert_dependencies(model, data, expected: dict, *, cache=None, labels=None,
                        **settings) -> None:
    """Every clause of `expected`, {head: {input: "depends" | "independent" | "no_path"}}, in
    one probe run; the failure shows both matrices side by side."""
    _fail(check(model, data, expected, cache=cache, labels=labels, **settings), settings)
