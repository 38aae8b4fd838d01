"""The decision rule holds its error rates on designs it was not chosen on (issue 28): per-sample
effects simulated with a known share (benchmarks/grids.py) through probes.results.stats, the
verdicts as `summarize` gives them (Holm over the head's cells, refused claims inconclusive).
The full grids: `python -m benchmarks.heldout --grid tuning|held-out|...|held-out-5`."""

import numpy as np
import pytest

from benchmarks import grids
from benchmarks import heldout as cal
from probes.results.stats import share_p_values, summarize
from probes.testing import samples_needed

DATASETS = 1000
# 5% plus two binomial SE of 1000 data sets (0.69 points): 6.4%. The seeds are fixed, so the
# outcome is too. The rule before issue 28 (log-odds t-tests with two adverse copies, Kish
# degrees of freedom) calls `depends` in 7.5% of "weibull beside pareto 1.5" data sets at
# n = 100 here, and fails this check.
BOUND = 0.05 + 2 * np.sqrt(0.05 * 0.95 / DATASETS)
# The reduced held-out check: every design of the held-out grids at one size each: the last
# (HELD_OUT_5) and three spent ones within the tails the rule claims (the third went beyond
# them, to Pareto 1.3, where the rule errs at 25 and 60 samples: benchmarks/grids.py). The
# full grids: python -m benchmarks.heldout --grid held-out-5.
REDUCED = ([(d, 110) for d in grids.HELD_OUT_5] + [(d, 90) for d in grids.HELD_OUT_4]
           + [(d, 100) for d in grids.HELD_OUT] + [(d, 120) for d in grids.HELD_OUT_2])


def _result(effects):
    i, n = effects.shape
    from probes.results.result import ProbeResult

    return ProbeResult(probe="ablation", method="simulated", model="calibration",
                       heads=("head",), inputs=tuple(f"x{k}" for k in range(i)),
                       effects=effects[None], structural=np.ones((1, i), bool),
                       sample_ids=np.arange(n), params={"seed": 0})


@pytest.mark.slow
@pytest.mark.parametrize("design,n", REDUCED, ids=[f"{d[0]}, n {n}" for d, n in REDUCED])
def test_both_claims_hold_on_the_held_out_designs(design, n):
    r = cal.rates(design, n, datasets=DATASETS)  # ~2 s per design
    for what in ("depends", "negligible"):
        assert r[what, 0.05] <= BOUND, (
            f"{design[0]}, n = {n}: {what} in {r[what, 0.05]:.1%} of data sets whose true "
            f"share is exactly 0.05; expected at most {BOUND:.1%}")
    # Guard against a rule that passes by refusing: at a true share of 0.20 the claim is made.
    assert r["depends", 0.20] >= 0.2, f"{design[0]}: depends in {r['depends', 0.20]:.1%}"


@pytest.mark.slow
def test_power_on_the_exponential_design_at_n_256():
    r = cal.rates(grids.TUNING[0], 256, datasets=DATASETS)
    assert r["depends", 0.10] >= 0.8, f"depends in {r['depends', 0.10]:.1%} at share 0.10"


@pytest.mark.parametrize("design", [grids.TUNING[3], grids.TUNING[7]], ids=["lognormal", "corr"])
def test_the_benchmark_verdicts_are_summarize_s(design):
    effects = grids.simulate(design, 40, 0.07, 12, np.random.default_rng(1))  # (12, 4, 40)
    expected = [summarize(_result(e), n_boot=20).verdict[0, 0] for e in effects]
    np.testing.assert_array_equal(cal.verdicts(effects), expected)


def test_the_tests_are_scale_free():
    effects = grids.simulate(grids.TUNING[3], 50, 0.05, 100, np.random.default_rng(2))
    p = np.array(share_p_values(effects, resamples=199))
    # A power of two scales every float exactly: the same p-values, bit for bit.
    np.testing.assert_array_equal(np.array(share_p_values(effects * 2.0 ** -40, resamples=199)),
                                  p)
    for factor in (1e-9, 1e9):
        # Other factors round each effect (relative 1e-16): a T* may cross T only at a tie.
        np.testing.assert_array_equal(np.array(share_p_values(effects * factor, resamples=199)),
                                      p)


@pytest.mark.parametrize("share,seed", [(0.03, 6), (0.08, 3)])
def test_the_promised_sample_count_gives_the_claim_in_half_of_the_data_sets(share, seed):
    design = grids.TUNING[0]  # four exponential inputs
    e = grids.simulate(design, 30, share, 1, np.random.default_rng(seed))[0]
    s = summarize(_result(e))
    assert s.verdict[0, 0] == "inconclusive"  # guard: 30 samples do not decide it
    text = samples_needed(30, s, 0, 0, effects=e)
    count = int(text.split()[1])
    claim = "negligible" if share < 0.05 else "depends"
    assert f"share {'below' if share < 0.05 else 'above'} 0.05" in text
    # Drawn from the true distribution, not from the 30 samples the count was measured on.
    drawn = grids.simulate(design, count, share, 60, np.random.default_rng(4))
    rate = np.mean(cal.verdicts(drawn) == claim)
    assert rate >= 0.5, f"{text}: {claim} in {rate:.0%} of 60 data sets of {count}"
