"""The seed's answer at full size, as the report decides it (issue 28: the decision rule must
not change it): both variants trained at the report's size, every probe its pages decide from
run by the CLI at its default sample count (256 held-out pairs, seed 0). Concat depends on
both tweets in both heads; separate's heads on their own tweet only, the cross cells exact
structural zeros. A k-hat refusal once made concat's head_1 <- tweet_a `inconclusive` here
(shuffle ablation, share 0.49, k-hat 0.97 of bounded effects)."""

import json

import pytest

from tests.test_robustness import cli

pytestmark = pytest.mark.slow  # trains both variants at full size: about 3 minutes

PROBES = [("ablate", "--mode", "shuffle"), ("ablate", "--mode", "zero"),
          ("ablate", "--mode", "occlusion"), ("attribute", "--method", "integrated_gradients"),
          ("attribute", "--method", "saliency")]
EXPECTED = {"concat": [["depends", "depends"], ["depends", "depends"]],
            "separate": [["depends", "structural_zero"], ["structural_zero", "depends"]]}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # the first probe of each variant trains it


@pytest.mark.parametrize("variant", sorted(EXPECTED))
@pytest.mark.parametrize("command,option,value", PROBES, ids=[p[2] for p in PROBES])
def test_the_seed_s_full_size_answer(cache, variant, command, option, value):
    out = json.loads(cli([command, "--variant", variant, option, value, "--json",
                          "--cache-dir", cache]).stdout)
    assert out["samples"] == 256  # guard: the report's sample count
    assert out["heads"] == ["head_1", "head_2"] and out["inputs"] == ["tweet_a", "tweet_b"]
    assert out["verdict"] == EXPECTED[variant], (out["share"], out.get("reason"))
