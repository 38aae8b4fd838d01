import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from probes.results.result import ProbeResult, load, save
from probes.results import sharetest
from probes.results.seeds import generator
from probes.results.stats import (MIN_SAMPLES, bootstrap_means, format_table, holm,
                                  share_p_values, summarize, to_json)


def _result(effects, structural=None, seed=0):
    h, i, n = effects.shape
    return ProbeResult(probe="ablation", method="test", model="m",
                       heads=tuple(f"h{k}" for k in range(h)),
                       inputs=tuple(f"x{k}" for k in range(i)), effects=effects,
                       structural=np.ones((h, i), bool) if structural is None else structural,
                       sample_ids=np.arange(n), params={"seed": seed})


def test_holm_matches_a_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06.
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm(np.array([[0.5, np.nan], [0.6, 0.9]])),
                               [[1.0, np.nan], [1.0, 1.0]], rtol=1e-12)


def _bootstrap_t_p(e, o, delta, alternative, resamples, seed):
    """The rule as docs/explanation/decision-rule.md states it, written out resample by
    resample: ceil(3 / (1 - k)) more copies of the sample most adverse to the claim (k: the
    k-hat of the effect whose tail would refute it, clipped to [0, 0.9]), T of the share's log
    odds with its delta-method standard error, and the count of studentised resamples T*
    beyond T."""
    d = [a - delta * (a + b) for a, b in zip(e, o)]
    j = d.index(max(d)) if alternative == "less" else d.index(min(d))
    k = min(max(float(sharetest.k_hat(e if alternative == "less" else o)), 0.0), 0.9)
    copies = math.ceil(3 / (1 - k) - 1e-9)
    e, o = np.r_[e, [e[j]] * copies], np.r_[o, [o[j]] * copies]

    def stat(e, o):  # (log odds ratio, se)
        m = len(e)
        me, mo = sum(e) / m, sum(o) / m
        u = [a / me - b / mo for a, b in zip(e, o)]
        return math.log(me / mo), math.sqrt(sum(x * x for x in u) / (m - 1) / m)

    ratio, se = stat(e, o)
    t = (ratio - math.log(delta / (1 - delta))) / se
    idx = generator(seed, "bootstrap_t").integers(len(e), size=(resamples, len(e)))
    t_star = [(r - ratio) / s for r, s in (stat(e[k], o[k]) for k in idx)]
    beyond = sum(x >= t for x in t_star) if alternative == "greater" else \
        sum(x <= t for x in t_star)
    return (1 + beyond) / (resamples + 1)


def test_p_values_are_the_bootstrap_t_tests_written_out_then_holm():
    rng = np.random.default_rng(0)
    e = rng.exponential(size=(1, 3, 60)) * np.array([1.0, 0.15, 0.05])[:, None]
    raw = {alt: [_bootstrap_t_p(e[0, i], e[0].sum(axis=0) - e[0, i], 0.1, alt, 200, 4)
                 for i in range(3)] for alt in ("greater", "less")}
    # Guard: the cells are on both sides of delta.
    assert raw["greater"][0] < 0.01 and raw["less"][2] < 0.05
    # float64 sums in another order could move a T* across T only at a tie: none here.
    np.testing.assert_allclose(share_p_values(e, 0.1, resamples=200, seed=4),
                               [[raw["greater"]], [raw["less"]]], rtol=1e-12)
    s = summarize(_result(e, seed=4), delta=0.1)
    p_dep, p_neg = share_p_values(e, 0.1, resamples=s.settings["resamples_t"], seed=4)
    np.testing.assert_allclose(s.p_value[0], holm(p_dep[0]), rtol=1e-12)
    np.testing.assert_allclose(s.p_negligible[0], holm(p_neg[0]), rtol=1e-12)
    assert s.verdict[0, 0] == "depends" and s.verdict[0, 2] == "negligible"


def test_an_input_alone_in_its_head_is_decided_by_the_paired_t_test():
    # No other input can move head 0 (no path): the share is 1 wherever it moves, and the
    # paired t-test on d = e - delta * t (here 0.95 e) decides.
    rng = np.random.default_rng(8)
    e = np.zeros((1, 2, 40))
    e[0, 0] = rng.exponential(size=40)
    s = summarize(_result(e, np.array([[True, False]])))
    p = sps.ttest_1samp(0.95 * e[0, 0], 0.0, alternative="greater").pvalue
    np.testing.assert_allclose(s.p_value[0, 0], p, rtol=1e-9)  # one tested cell: Holm is 1x
    assert s.verdict.tolist() == [["depends", "structural_zero"]]
    # With a path from the other input, 40 samples could miss it moving the head on up to
    # 3/40 of samples (the rule of three): unseen, not shown to be small.
    s = summarize(_result(e))
    assert s.verdict.tolist() == [["inconclusive", "zero"]]
    assert s.reason[0, 0] == ("depends refused: no other input with a path moved the head on "
                              "any of fewer than 60 samples")
    # From 60 samples on, the one-input test decides as without the path.
    e = np.zeros((1, 2, 60))
    e[0, 0] = rng.exponential(size=60)
    assert summarize(_result(e)).verdict.tolist() == [["depends", "zero"]]


def test_a_tail_heavier_than_the_copies_cover_is_said_beside_an_inconclusive_verdict():
    rng = np.random.default_rng(9)
    n = 400
    e = np.zeros((1, 2, n))
    e[0, 0] = rng.uniform(0.5, 1.5, n)
    e[0, 1] = 0.01 * rng.pareto(1.0, n)  # tail index 1: k = 1, no mean; share ~0.047
    assert sharetest.refusals(e[0, 1])[1] > sharetest.K_HAT  # guard: k-hat 1.02
    s = summarize(_result(e))
    assert s.share[0, 1] < 0.05 and s.verdict.tolist() == [["depends", "inconclusive"]]
    assert s.reason[0, 1] == ("negligible not shown: the tail of the input's effects is heavy "
                              "(Pareto k-hat 1.02 > 0.9), and the claim must hold with 30 "
                              "copies of its most adverse sample")
    assert s.reason[0, 0] == ""  # the uniform input's claim stands beside it
    r = _result(e)
    assert to_json(r, s)["reason"] == s.reason.tolist()
    assert f"inconclusive h0 <- x1: {s.reason[0, 1]}" in format_table(r, s).splitlines()
    # Far enough from delta, the claim holds with the 30 copies and is made.
    e[0, 1] *= 0.05
    assert summarize(_result(e)).verdict.tolist() == [["depends", "negligible"]]


def test_the_copies_follow_the_tail_s_shape():
    # 3 / (1 - k) rounded up: no tail (-inf) or a light one as k = 0, an unjudged tail (NaN)
    # as a Pareto 1.5's k = 2/3, and at most k = 0.9's 30.
    k = np.array([np.nan, -np.inf, -0.3, 0.0, 0.5, 2 / 3, 0.9, 1.5])
    assert sharetest.copies_for(k).tolist() == [9, 3, 3, 3, 6, 9, 30, 30]


def test_one_sample_carrying_most_of_an_effect_refuses_the_claim():
    x = np.r_[np.full(60, 0.1), 7.0]  # the last sample: 7 / 13 = 54% of the sum
    part, k = sharetest.refusals(x)
    np.testing.assert_allclose(part, 7 / 13, rtol=1e-12)
    assert sharetest.reason(part, "the input's effects") == \
        "one sample carries 54% of the input's effects"
    assert sharetest.reason(0.4, "x") == ""
    assert np.isnan(sharetest.refusals(x[:40])[1])  # a tail of 8: k-hat not judged


@pytest.mark.parametrize("index", [1.5, 2.0, 3.0])
def test_k_hat_recovers_a_pareto_tail(index):
    x = np.random.default_rng(10).pareto(index, (50, 4000)) + 1.0  # Pareto I, k = 1 / index
    # 4000 samples: a tail of 190, k-hat's SE about (1 + k) / sqrt(190) = 0.1 each; the
    # median over 50 is within 0.05 (and the prior pulls towards 0.5 by 5%).
    np.testing.assert_allclose(np.median(sharetest.k_hat(x)), 1 / index, atol=0.05)


def test_bootstrap_interval_matches_the_normal_theory_interval():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, size=400)
    s = summarize(_result(np.abs(x)[None, None]), n_boot=4000)
    se = np.abs(x).std(ddof=1) / np.sqrt(400)
    # Percentile bootstrap vs mean +- 1.96 se: Monte Carlo error of 4000 resamples ~ 3% of se.
    np.testing.assert_allclose([s.ci_low[0, 0], s.ci_high[0, 0]],
                               [np.abs(x).mean() - 1.96 * se, np.abs(x).mean() + 1.96 * se],
                               atol=0.1 * se)


def test_bootstrap_means_use_the_same_resamples_for_every_cell():
    rng = np.random.default_rng(2)
    v = rng.random((3, 50))
    b = bootstrap_means(np.stack([v[0], 2 * v[0], v[1]]), 100, np.random.default_rng(0))
    np.testing.assert_allclose(b[1], 2 * b[0], rtol=1e-12)  # paired: exactly proportional


def test_verdicts_on_planted_effects():
    rng = np.random.default_rng(3)
    n = 200
    e = np.zeros((2, 4, n))
    e[0, 0] = rng.uniform(0.5, 1.5, n)          # share ~0.5: depends
    e[0, 1] = rng.uniform(0.5, 1.5, n)          # share ~0.5: depends
    e[0, 2] = rng.uniform(0, 2e-3, n)           # share ~0.001: negligible
    e[1, 0] = rng.uniform(0.5, 1.5, n)          # the only mover of head 1
    # Share exactly delta = 0.05 (c / (1 + c) with c = 1/19): the paired differences
    # d = 0.05 * e[1, 0] * (u - 1) are symmetric about 0, so neither test can decide.
    e[1, 1] = e[1, 0] * rng.uniform(0.9, 1.1, n) / 19
    structural = np.array([[True, True, True, False], [True, True, True, True]])
    s = summarize(_result(e, structural))
    np.testing.assert_array_equal(s.verdict, [
        ["depends", "depends", "negligible", "structural_zero"],
        ["depends", "inconclusive", "zero", "zero"]])
    np.testing.assert_array_equal(s.depends, s.verdict == "depends")
    np.testing.assert_allclose(s.share.sum(axis=1), 1.0, rtol=1e-12)


def test_the_rule_is_scale_free():
    rng = np.random.default_rng(4)
    e = np.abs(rng.normal(size=(2, 2, 50)))
    e[1, 1] *= 1e-4
    big, tiny = summarize(_result(e)), summarize(_result(e * 1e-9))
    np.testing.assert_array_equal(big.verdict, tiny.verdict)
    np.testing.assert_array_equal(big.verdict, [["depends", "depends"],
                                                ["depends", "negligible"]])
    np.testing.assert_allclose(tiny.p_value, big.p_value, rtol=1e-9)


@pytest.mark.parametrize("n", [1, 5, MIN_SAMPLES - 1])
def test_too_few_samples_keep_the_exact_zeros_and_test_nothing(n):
    e = np.ones((1, 3, n))
    e[0, 1] = 0.0  # a path that carries nothing
    e[0, 2] = 0.0
    structural = np.array([[True, True, False]])
    s = summarize(_result(e, structural))
    assert s.verdict.tolist() == [["too_few_samples", "zero", "structural_zero"]]
    # Untested cells keep p = 1 in the JSON; the keys are those of a full summary.
    assert s.p_value[0, 0] == 1.0 and s.p_negligible[0, 0] == 1.0
    r = _result(e, structural)
    assert set(to_json(r, s)) == set(to_json(*_enough(r)))
    # The same effects repeated to MIN_SAMPLES rows are tested: the guard is the sample count.
    # (x1 has a path but never moves the head: x0's `depends` is refused, with that reason.)
    big = _result(np.repeat(e, -(-MIN_SAMPLES // n), axis=2), structural)
    assert summarize(big).verdict[0, 0] == "inconclusive"
    assert summarize(big).reason[0, 0].startswith("depends refused: no other input")


def _enough(r):
    full = dataclasses.replace(r, effects=np.repeat(r.effects, MIN_SAMPLES, axis=2),
                               sample_ids=np.arange(r.samples * MIN_SAMPLES))
    return full, summarize(full)


def test_same_seed_same_summary_and_json_contract():
    rng = np.random.default_rng(5)
    r = _result(np.abs(rng.normal(size=(2, 3, 30))))
    a, b = to_json(r, summarize(r)), to_json(r, summarize(r))
    assert a == b
    for key in ("effect", "ci_low", "ci_high", "share", "p_value", "verdict", "depends",
                "structural"):
        assert np.shape(a[key]) == (2, 3), key
    assert a["heads"] == ["h0", "h1"] and a["inputs"] == ["x0", "x1", "x2"]


def test_save_load_round_trip_and_malformed_files(tmp_path):
    rng = np.random.default_rng(6)
    r = _result(np.abs(rng.normal(size=(2, 2, 25))))
    path = save(r, tmp_path)
    back = load(path)
    np.testing.assert_array_equal(back.effects, r.effects)
    assert (back.heads, back.inputs, back.params) == (r.heads, r.inputs, r.params)
    assert back.loss_effects is None and back.profile is None
    (tmp_path / "ablation-test.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Expected a probe result at"):
        load(path)


def test_a_dependence_carried_by_a_minority_of_samples_is_detected():
    # Like an OR head: input 0 moves the head on 30% of samples only, input 1 on all.
    rng = np.random.default_rng(7)
    n = 200
    e = np.zeros((1, 2, n))
    e[0, 0] = np.where(rng.random(n) < 0.3, rng.uniform(0.5, 1.0, n), 1e-4)
    e[0, 1] = rng.uniform(0.2, 0.4, n)
    s = summarize(_result(e))
    assert s.share[0, 0] > 0.3  # guard: a large share, yet most samples barely move
    np.testing.assert_array_equal(s.verdict, [["depends", "depends"]])


def test_constant_differences_decide_by_sign():
    e = np.ones((1, 2, 30))
    e[0, 1] = 0.01  # share 0.0099 < delta on every sample, without variance
    np.testing.assert_array_equal(summarize(_result(e)).verdict, [["depends", "negligible"]])
