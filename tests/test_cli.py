import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from probes.cli import main

TINY_ARGS = ["--seq-len", "12", "--features", "16", "--units", "4", "--train-samples", "200",
             "--epochs", "2", "--heldout-samples", "100", "--batch-size", "50"]


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from probes.cli import main; "
            "CliRunner().invoke(main, ['train', '--help']); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_train_prints_accuracy_next_to_references_then_reuses_the_cache(tmp_path):
    runner = CliRunner()
    args = ["train", "--variant", "separate", "--cache-dir", str(tmp_path)] + TINY_ARGS
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0].startswith("run: ") and lines[1].startswith("trained now")
    header = next(line for line in lines if line.startswith("head "))
    assert header.split() == ["head", "task", "model", "ref:neither", "ref:tweet_a",
                              "ref:tweet_b", "ref:both"]
    assert any(line.startswith("head_1  both_in_group") for line in lines)
    assert "epoch 2/2" in first.stderr  # progress goes to stderr

    second = runner.invoke(main, args + ["--json"])
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["trained"] is False and data["variant"] == "separate"
    assert set(data["heads"]) == {"head_1", "head_2"}
    assert set(data["heads"]["head_1"]["reference"]) == {"neither", "tweet_a", "tweet_b", "both"}


def test_bad_option_is_a_one_line_usage_error():
    result = CliRunner().invoke(main, ["train", "--variant", "siamese"])
    assert result.exit_code == 2
    assert "'siamese' is not one of 'concat', 'separate', 'concat_mlp'" in result.output
    assert "Traceback" not in result.output
