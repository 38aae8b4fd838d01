"""Behaviour is unchanged by the redesign (issue 26): every probe command's --json on both tiny
seed variants, and the Python API's saved results for the same probes, equal the record made
before the move (tests/golden/behaviour.json, written by `python -m tests.golden.calls`), field
by field and exactly: the computations did not change, only where their code lives."""

import json
import re

import pytest

from tests.golden import calls

pytestmark = pytest.mark.slow  # trains two tiny models and runs every probe twice over

# What the redesign changed on purpose, each with its reason; every other field must be equal.
INTENDED = {
    # Sanity judges |rho| (a map that only flips its sign has not changed): the CLI's verdicts
    # may differ, and the JSON gains the mean |rho| per step (tests/test_sanity.py).
    r"cli/\w+/sanity/verdict/.*": "sanity's verdict on |rho|",
    r"cli/\w+/sanity/absolute_correlation: new": "sanity's verdict on |rho|",
    # Issue 28: the decision rule is a bootstrap-t test with tail diagnostics. Its p-values
    # and settings are new; the verdicts are not (concat depends on both tweets, separate's
    # cross cells are structural zeros, its own cells decided by the unchanged paired t-test).
    r".*/p_value\[\d+\]\[\d+\]": "issue 28: bootstrap-t p-values",
    r".*/statistics/test": "issue 28: the test's name",
    r".*/statistics/(resamples_t|tested_cells|few|k_hat): new": "issue 28: its settings",
    r".*/reason: new": "issue 28: why a claim was refused",
    # Issue 27: a Structure says whether its graph can be read (False for a subclassed model).
    r"api/\w+/structure/json/result/fields/readable: new": "Structure.readable",
}


def _differences(recorded, now, where="", out=None):
    out = [] if out is None else out
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in sorted(set(recorded) | set(now)):
            if key not in now or key not in recorded:
                out.append(f"{where}/{key}: {'missing now' if key not in now else 'new'}")
            else:
                _differences(recorded[key], now[key], f"{where}/{key}", out)
    elif isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        for k, (a, b) in enumerate(zip(recorded, now)):
            _differences(a, b, f"{where}[{k}]", out)
    elif recorded != now and not (recorded != recorded and now != now):  # NaN equals NaN
        out.append(f"{where}: recorded {str(recorded)[:80]}, now {str(now)[:80]}")
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    recorded = json.loads(calls.RECORD.read_text())
    return recorded, json.loads(json.dumps(calls.collect(tmp_path_factory.mktemp("golden"))))


@pytest.mark.parametrize("surface", ["cli", "api"])
def test_every_output_equals_the_record_made_before_the_move(outputs, surface):
    recorded, now = outputs
    assert len(recorded[surface]) >= 18  # guard: the record holds every call
    differences = [d for d in _differences(recorded[surface], now[surface], surface)
                   if not any(re.fullmatch(pattern, d.split(": recorded")[0])
                              or re.fullmatch(pattern, d) for pattern in INTENDED)]
    assert not differences, f"{len(differences)} differences: " + "; ".join(differences[:10])


def test_the_comparison_sees_a_changed_number(outputs):
    recorded, _ = outputs
    changed = json.loads(json.dumps(recorded["cli"]))
    changed["concat/ablate-shuffle"]["effect"][0][0] += 1e-12
    assert _differences(recorded["cli"], changed, "cli") == [
        "cli/concat/ablate-shuffle/effect[0][0]: recorded "
        f"{recorded['cli']['concat/ablate-shuffle']['effect'][0][0]}, now "
        f"{changed['concat/ablate-shuffle']['effect'][0][0]}"]
