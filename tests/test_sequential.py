"""Sequential models work wherever a functional model does (issue 27, item 1), as objects and as
files, named as Keras names them: the models below are those of the Keras guide "The Sequential
model" (keras.io/guides/sequential_model), plus the guide's "a Sequential model as a layer" used
as the question's shared encoder."""

import functools
import json

import keras
import numpy as np
import pypdf
import pytest
from click.testing import CliRunner
from keras import layers

import probes
from probes.cli import main
from probes.testing import assert_depends, assert_no_path


@functools.lru_cache(maxsize=None)
def guide_model():
    """The guide's first model, with the Input the guide adds to build it up front."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape=(4,)),
                             layers.Dense(2, activation="relu", name="layer1"),
                             layers.Dense(3, activation="relu", name="layer2"),
                             layers.Dense(4, name="layer3")])


def _input_name(model) -> str:
    """The input's name as Keras gave it ("input_layer", or "input_layer_K" when the process
    made other models first)."""
    return model.inputs[0]._keras_history.operation.name


def _data(n=40, seed=0):
    return {_input_name(guide_model()):
            np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")}


@functools.lru_cache(maxsize=None)
def shared_sequential_encoder():
    """Two inputs through one Sequential encoder (the guide's "Sequential model as a layer"),
    each head on one encoding: head_1 has no path from b, head_2 none from a."""
    keras.utils.set_random_seed(1)
    encoder = keras.Sequential([layers.Dense(6, activation="relu"), layers.Dense(3)],
                               name="encoder")
    a, b = keras.Input((5,), name="a"), keras.Input((5,), name="b")
    h1 = layers.Dense(1, activation="sigmoid", name="head_1")(encoder(a))
    h2 = layers.Dense(1, activation="sigmoid", name="head_2")(encoder(b))
    return keras.Model([a, b], [h1, h2])


def test_a_sequential_object_is_probed_by_its_keras_names():
    model = guide_model()
    weights = [w.copy() for w in model.get_weights()]
    name = _input_name(model)
    assert name.startswith("input_layer")  # Keras' own name for an unnamed Input
    res = probes.ablate(model, _data())
    assert res.heads == ("layer3",) and res.inputs == (name,)
    assert res.verdict("layer3", name) == "depends"
    assert res.effect("layer3", name) > 1e-3  # guard: a real effect was measured
    attribution = probes.attribute(model, _data(), method="saliency")
    assert attribution.verdict("layer3", name) == "depends"
    assert probes.structure(model).reach.tolist() == [[True]]
    # The user's model is the same Sequential, with the same weights, after every probe.
    assert type(model) is keras.Sequential and len(model.layers) == 3
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_a_sequential_file_through_the_commands(tmp_path):
    guide_model().save(tmp_path / "seq.keras")
    np.savez(tmp_path / "data.npz", **_data())
    out = CliRunner().invoke(main, ["ablate", "--model", str(tmp_path / "seq.keras"), "--data",
                                    str(tmp_path / "data.npz"), "--json"])
    assert out.exit_code == 0, out.output
    blob = json.loads(out.stdout)
    assert blob["heads"] == ["layer3"] and blob["inputs"] == [_input_name(guide_model())]
    assert blob["verdict"] == [["depends"]]
    out = CliRunner().invoke(main, ["structure", "--model", str(tmp_path / "seq.keras"),
                                    "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["structural"] == [[True]]


def test_contracts_on_a_sequential_encoder_shared_by_two_inputs():
    model = shared_sequential_encoder()
    rng = np.random.default_rng(2)
    data = {k: rng.normal(size=(60, 5)).astype("float32") for k in ("a", "b")}
    assert_no_path(model, "head_1", "b")
    assert_no_path(model, "head_2", "a")
    assert_depends(model, data, "head_1", "a", samples=60)
    res = probes.ablate(model, data)
    assert res.matrix() == {"head_1": {"a": "depends", "b": "structural_zero"},
                            "head_2": {"a": "structural_zero", "b": "depends"}}
    assert res.effects[0, 1].max() == 0.0 and res.effects[1, 0].max() == 0.0  # exact


def test_a_sequential_built_by_build_and_an_unbuilt_one():
    built = keras.Sequential([layers.Dense(3, name="hidden"), layers.Dense(1, name="out")])
    built.build((None, 4))
    name = built.inputs[0]._keras_history.operation.name  # as Keras names it
    res = probes.ablate(built, {name: next(iter(_data().values()))})
    assert res.heads == ("out",) and res.inputs == (name,)
    unbuilt = keras.Sequential([layers.Dense(1)])
    with pytest.raises(ValueError, match=r"^Expected a built Sequential model; received "
                                         r"'sequential.*', which has no input shape yet"):
        probes.ablate(unbuilt, _data())


@pytest.mark.slow
def test_report_on_a_sequential_file(tmp_path):
    guide_model().save(tmp_path / "seq.keras")
    np.savez(tmp_path / "data.npz", **_data(64))
    out = CliRunner().invoke(main, ["report", "--model", str(tmp_path / "seq.keras"), "--data",
                                    str(tmp_path / "data.npz"), "--out",
                                    str(tmp_path / "r.pdf")])
    assert out.exit_code == 0, out.output
    reader = pypdf.PdfReader(str(tmp_path / "r.pdf"))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) == 11 and "layer3" in text and _input_name(guide_model()) in text
