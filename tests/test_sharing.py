"""probe sharing: the arms, the result's statistics, and transfer where it is guaranteed."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from mtl_models import runs, sharing
from probes.cli import main
from probes.results import transfer

HEADS = ("head_1", "head_2")


def _result(acc, seeds=(0, 1, 2, 3)):
    """A SharingResult with given accuracies {arm: (H, S, R)}, one size (10)."""
    shape = (2, 1, len(seeds))
    ref = {s: np.full(shape, 0.9) for s in transfer.REFERENCE_SOURCES}
    return transfer.SharingResult(
        variant="separate", tasks=("group_a", "group_b"), heads=HEADS, sizes=(10,),
        seeds=tuple(seeds), accuracy={a: np.asarray(v, float).reshape(shape)
                                      for a, v in acc.items()},
        reference=ref, cosine=[[[] for _ in seeds]], labelled=(None, None), runs=[], params={})


def test_transfer_is_the_paired_difference_with_a_t_interval():
    tied = [[0.90, 0.80, 0.95, 0.85], [0.7, 0.7, 0.7, 0.7]]
    single = [[0.80, 0.75, 0.80, 0.70], [0.7, 0.7, 0.7, 0.7]]
    res = _result({"tied": tied, "untied": single, "single": single})
    got = res.transfer("head_1", "tied - single", 10)
    d = np.subtract(tied[0], single[0])  # (0.10, 0.05, 0.15, 0.15): paired per seed
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    # Both sides compute the same float64 expressions; 1e-12 only absorbs summation order.
    np.testing.assert_allclose([got.mean, got.low, got.high],
                               [d.mean(), d.mean() - half, d.mean() + half], rtol=0, atol=1e-12)
    assert got.low > 0  # guard: a real, clearly positive transfer in this example
    # Identical arms give exactly zero transfer and a zero-width interval.
    same = res.transfer("head_2", "tied - single", 10)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)
    assert "sharing helps" in res.sentences()[0] and "no clear difference" not in \
        res.sentences()[0].split("against one")[0]


def test_one_seed_has_no_interval_and_says_so():
    res = _result({a: [[0.8], [0.7]] for a in transfer.ARMS}, seeds=(0,))
    got = res.transfer("head_1", "tied - untied", 10)
    assert got.mean == 0.0 and np.isnan(got.low) and np.isnan(got.high)
    assert "one seed: no interval" in res.sentences()[0]


def test_result_round_trips_and_malformed_files_are_refused(tmp_path):
    res = _result({a: np.linspace(0.6, 0.9, 8) for a in transfer.ARMS})
    back = transfer.load(res.save(tmp_path))
    for arm in transfer.ARMS:
        np.testing.assert_array_equal(back.accuracy[arm], res.accuracy[arm])
    assert back.table() == res.table()
    blob = json.loads((tmp_path / transfer.FILENAME).read_text())
    del blob["accuracy"]["untied"]
    (tmp_path / transfer.FILENAME).write_text(json.dumps(blob))
    with pytest.raises(ValueError, match=r"Expected a probe sharing result; .*untied"):
        transfer.load(tmp_path)
    (tmp_path / transfer.FILENAME).write_text("{")
    with pytest.raises(ValueError, match="Expected a readable sharing.json"):
        transfer.load(tmp_path)


def test_arms_differ_only_in_variant_and_loss_weights():
    base = runs.TrainConfig(seq_len=8, features=6, min_len=4)
    arms = sharing.arm_configs("separate", ("group_a", "group_b"), 50, 3, base,
                               sharing.Schedule(), labelled=(80, None))
    assert [(a, h) for a, h, _ in arms] == [("tied", None), ("untied", None),
                                            ("single", "head_1"), ("single", "head_2")]
    configs = [c for _, _, c in arms]
    assert [c.variant for c in configs] == ["separate", "separate_untied", "separate",
                                            "separate"]
    assert [c.loss_weights for c in configs] == [(1.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]
    # Same data, world and initial weights: the seed and size are shared, labels capped at size.
    assert {(c.seed, c.n_train, c.labelled) for c in configs} == {(3, 50, (50, None))}
    assert len({c.key() for c in configs}) == 4
    with pytest.raises(ValueError, match="Expected a variant with an untied counterpart"):
        sharing.arm_configs("concat_mlp", ("group_a", "group_b"), 50, 0, base,
                            sharing.Schedule())


@pytest.mark.parametrize("args,message", [
    (["--sizes", "0,10"], "distinct comma-separated pair counts"),
    (["--sizes", "10,10"], "distinct comma-separated pair counts"),
    (["--variant", "concat_mlp"], "'concat_mlp' is not one of"),
])
def test_bad_options_end_in_one_line(args, message, tmp_path):
    out = CliRunner().invoke(main, ["sharing", *args, "--cache-dir", str(tmp_path)])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_tied_beats_single_and_untied_on_a_scarce_task(tmp_path):
    # head_1 has 8 labelled pairs, head_2 all 400; both tasks need the group of their own
    # tweet's author. Only through the tied encoder can head_2's labels teach head_1's input,
    # so by construction tied > single task and tied > untied on head_1.
    base = runs.TrainConfig(style=0.4, seq_len=24, features=16, units=8, min_len=12)
    schedule = sharing.Schedule(steps_per_epoch=10, epochs=8, n_heldout=400,
                                learning_rate=1e-2)
    lines = []
    res = sharing.sharing("separate", sizes=(400,), seeds=6, labelled=(8, None), base=base,
                          schedule=schedule, cache=tmp_path, report=lines.append)
    assert any(line.startswith("[24/24] single (head_2 alone), 400 pairs, seed 5: training")
               for line in lines)
    for kind in transfer.TRANSFERS:
        got = res.transfer("head_1", kind, 400)
        assert got.low > 0, (kind, got)  # measured: +25.9 [+15.1, +36.6], +24.1 [+12.7, +35.5]
    assert res.interval("head_1", "tied", 400).mean > 0.8  # guard: the tied model learned
    # Again: every run is cached, nothing trains, the numbers are the same.
    again_lines = []
    again = sharing.sharing("separate", sizes=(400,), seeds=6, labelled=(8, None), base=base,
                            schedule=schedule, cache=tmp_path, report=again_lines.append)
    assert not any(": training" in line for line in again_lines)
    np.testing.assert_array_equal(again.accuracy["tied"], res.accuracy["tied"])


@pytest.mark.slow
def test_cli_sweep_prints_saves_and_reuses(tmp_path):
    args = ["sharing", "--seq-len", "12", "--features", "8", "--units", "4", "--sizes", "40",
            "--seeds", "1", "--steps", "20", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "out")]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "[4/4] single (head_2 alone), 40 pairs, seed 0: training" in out.output
    assert "one seed: no interval" in out.stdout and "saved " in out.stdout
    res = transfer.load(tmp_path / "out")
    assert res.sizes == (40,) and res.seeds == (0,)
    again = CliRunner().invoke(main, args + ["--json"])
    assert again.exit_code == 0 and ": training" not in again.output
    blob = json.loads(again.stdout.strip().splitlines()[-1])
    assert blob["accuracy"]["tied"] == res.to_json()["accuracy"]["tied"]


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2, 3)])
def test_sharing_page_states_the_numbers(seeds, tmp_path):
    import io

    import pypdf
    from matplotlib.backends.backend_pdf import PdfPages

    from reports.pages_sharing import page_sharing

    rng = np.random.default_rng(1)
    res = _result({a: 0.6 + 0.3 * rng.random(2 * len(seeds)) for a in transfer.ARMS},
                  seeds=seeds)
    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        pdf.savefig(page_sharing(res))
    text = pypdf.PdfReader(io.BytesIO(buf.getvalue())).pages[0].extract_text()
    text = text.replace("\n", " ")
    for head in HEADS:
        got = res.transfer(head, "tied - untied", 10)
        assert f"by {got.mean * 100:+.1f} points" in text  # the sentence, from the numbers
    assert ("one seed: no interval" in text) == (len(seeds) == 1)
    assert "no gradient record" in text  # this result has no monitor record
