"""Attribution maps on the text: decoding, rendering, and `probe attribute --show`."""

import numpy as np
import pytest
from click.testing import CliRunner

from probes import one_hot
from probes.cli import main
from probes.results import textmaps


def test_one_hot_rows_decode_to_characters_without_the_padding():
    codes = np.array([-1, -1, ord("h"), ord("i"), 7])
    shown, positions = textmaps.symbols(one_hot(codes, 256))
    assert shown == ["h", "i", "\u00b7"] and positions.tolist() == [2, 3, 4]
    ids, where = textmaps.symbols(np.array([0, 0, 5, 12]))
    assert ids == ["[5]", "[12]"] and where.tolist() == [2, 3]
    assert textmaps.symbols(np.random.default_rng(0).random((4, 256))) is None
    assert textmaps.symbols(one_hot(np.array([1, 2, -1]), 16)) is None  # too narrow for text


def test_marks_carry_the_sign_and_strength_without_colour():
    out = textmaps.render(list("abcde"), np.array([1.0, -0.5, 0.1, 0.0, -0.05]), 1.0,
                          ansi=False)
    # + strong positive, - strong negative (>= 25% of the scale), . weaker, space for 0.0.
    assert out == "abcde\n+-. ."
    # Lines wrap at WIDTH symbols, each followed by its marks.
    long = textmaps.render(["x"] * (textmaps.WIDTH + 3), np.ones(textmaps.WIDTH + 3), 1.0,
                           ansi=False).split("\n")
    assert [len(line) for line in long] == [textmaps.WIDTH, textmaps.WIDTH, 3, 3]


def test_colour_marks_only_attributed_symbols():
    out = textmaps.render(list("ab"), np.array([0.0, 2.0]), 2.0, ansi=True)
    assert out.startswith("a\x1b[48;2;255;64;64m")  # 'a' (0.0) plain, 'b' full red
    assert textmaps.render(list("ab"), np.array([0.0, -2.0]), 2.0, ansi=True).startswith(
        "a\x1b[48;2;64;64;255m")
    assert textmaps.scale([np.array([0.5, -3.0]), np.array([2.0])]) == 3.0


@pytest.fixture(scope="module")
def separate_files(tmp_path_factory):
    from mtl_models.variants import build_model

    d = tmp_path_factory.mktemp("show")
    model = build_model("separate", seq_len=10, features=128, units=4, seed=3)
    rng = np.random.default_rng(0)
    codes = rng.integers(97, 123, size=(2, 24, 10))  # lowercase letters
    codes[:, :, :3] = -1  # three steps of pre-padding
    model.save(d / "separate.keras")
    np.savez(d / "pairs.npz", tweet_a=one_hot(codes[0], 128), tweet_b=one_hot(codes[1], 128))
    return d, codes


def test_show_prints_the_text_and_a_blind_head_uncoloured(separate_files):
    d, codes = separate_files
    out = CliRunner().invoke(main, [
        "attribute", "--model", str(d / "separate.keras"), "--data", str(d / "pairs.npz"),
        "--method", "integrated_gradients", "--baseline", "zero", "--steps", "16",
        "--show", "2", "--color", "never"])
    assert out.exit_code == 0, out.output
    text = out.stdout
    a = "".join(map(chr, codes[0, 2, 3:]))
    b = "".join(map(chr, codes[1, 2, 3:]))
    block = text.split("sample 2, head_1")[1].split("sample 2, head_2")[0]
    lines = block.splitlines()
    # head_1 reads tweet_a: its 7 characters, each marked; tweet_b: exactly 0.0, no marks.
    i = lines.index("  tweet_a:")
    assert lines[i + 1] == a and len(lines[i + 2]) == 7 and " " not in lines[i + 2]
    j = lines.index("  tweet_b:")
    assert lines[j + 1] == b and lines[j + 2].strip() == ""
    block2 = text.split("sample 2, head_2")[1].splitlines()
    k = block2.index("  tweet_a:")
    assert block2[k + 2].strip() == ""  # head_2 is blind to tweet_a


def test_show_beyond_the_samples_is_one_line(separate_files):
    d, _ = separate_files
    out = CliRunner().invoke(main, [
        "attribute", "--model", str(d / "separate.keras"), "--data", str(d / "pairs.npz"),
        "--show", "24"])
    assert out.exit_code == 2
    assert "Expected --show sample indices below 24" in out.output
    assert "Traceback" not in out.output


def test_report_colours_match_the_terminal_scale():
    from reports.pages_text import colours

    rgb = colours(np.array([2.0, -1.0, 0.0, 4.0]), 2.0)
    # Full red at the scale, half blue at half the scale, white at 0, clipped beyond.
    np.testing.assert_allclose(rgb, [[1, 0.25, 0.25], [0.625, 0.625, 1], [1, 1, 1],
                                     [1, 0.25, 0.25]], rtol=0, atol=1e-12)


def test_report_page_draws_any_character(tmp_path):
    import io
    from types import SimpleNamespace

    import pypdf
    from matplotlib.backends.backend_pdf import PdfPages

    from probes.results.result import ProbeResult
    from reports.pages_text import PROBE, page_text

    # Real tweets hold '$', '_' and '^': characters, never mathtext.
    text = "price $5 or $6_a^b " * 4
    codes = np.full((3, 90), -1)
    codes[:, -len(text):] = [ord(c) for c in text]
    maps = tuple(np.random.default_rng(0).standard_normal((2, 3, 90)) for _ in range(2))
    res = ProbeResult(probe="attribution", method="integrated_gradients", model="m",
                      heads=("head_1", "head_2"), inputs=("tweet_a", "tweet_b"),
                      effects=np.ones((2, 2, 3)), structural=np.ones((2, 2), bool),
                      sample_ids=np.arange(3), params={}, maps=maps)
    subject = SimpleNamespace(label="concat", heads=["head_1", "head_2"],
                              results={PROBE: (res, None)},
                              texts={"tweet_a": codes, "tweet_b": codes})
    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        pdf.savefig(page_text([subject]))
    page = pypdf.PdfReader(io.BytesIO(buf.getvalue())).pages[0].extract_text()
    assert "price $5 or $6_a^b" in page and "pair 0, head_1" in page
