"""Attributes: types from `<A>_params`, coercion, getters and setters, refusals, buffer attributes."""

import numpy as np
import pytest
import soundfile
import torch

from nn_fixtures import BUFFER_MAX_SAMPLES, build_legacy_attributes
from ravelive.errors import AudioFileError, ModelAttributeError
from ravelive.models.attributes import AttributeType, coerce_values, to_json_value
from ravelive.models.nn_model import AttributeSpec, NNModel


@pytest.fixture
def model(attributes_model_path):
    return NNModel.load(attributes_model_path)  # fresh per test: setters change the model


def test_types_of_every_kind(model):
    assert {name: spec.types for name, spec in model.attributes.items()} == {
        "gain": (AttributeType.FLOAT,),
        "invert": (AttributeType.BOOL,),
        "steps": (AttributeType.INT,),
        "mode": (AttributeType.STR,),
        "curve": (AttributeType.TENSOR,),
        "range": (AttributeType.FLOAT, AttributeType.INT),
        "ir": (AttributeType.BUFFER,),
    }  # and nn_tilde's "none" placeholder is not an attribute


def test_current_values(model):
    assert model.get_attribute("gain") == (1.0,)
    assert model.get_attribute("invert") == (False,)  # getter returns a List
    assert model.get_attribute("range") == (0.25, 8)
    assert torch.equal(model.get_attribute("curve")[0], torch.tensor([0.0, 0.5, 1.0]))


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("gain", 0.5, (0.5,)),
        ("gain", "0.25", (0.25,)),
        ("gain", 2, (2.0,)),
        ("invert", "true", (True,)),
        ("invert", ["off"], (False,)),
        ("steps", "7", (7,)),
        ("steps", 3.0, (3,)),
        ("mode", "warm", ("warm",)),
        ("range", ["0.5", "2"], (0.5, 2)),
    ],
)
def test_set_then_get(model, name, values, expected):
    model.set_attribute(name, values)
    assert model.get_attribute(name) == expected


def test_set_tensor_from_text(model):
    model.set_attribute("curve", "[1, 2.5, 3]")
    assert torch.equal(model.get_attribute("curve")[0], torch.tensor([1.0, 2.5, 3.0]))


def test_attribute_changes_the_output(model):
    model.set_attribute("gain", "2")
    model.set_attribute("invert", True)
    assert torch.equal(model("forward", torch.ones(1, 1, 4)), torch.full((1, 1, 4), -2.0))


def test_refusal_is_reported(model):
    with pytest.raises(ModelAttributeError, match=r"attributes\.ts: the model refused gain = \(-1\.0\) \(set_gain returned 1\)"):
        model.set_attribute("gain", -1)


def test_refusal_keeps_the_old_value(model):
    with pytest.raises(ModelAttributeError):
        model.set_attribute("gain", -1)
    assert model.get_attribute("gain") == (1.0,)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("steps", "abc", r"attribute 'steps' value 0: 'abc' is not a valid int"),
        ("steps", 2.5, r"attribute 'steps' value 0: 2\.5 is not a valid int"),
        ("gain", True, r"attribute 'gain' value 0: True is not a valid float"),
        ("invert", "maybe", r"'maybe' is not a valid bool \(use true/false, 1/0, on/off or yes/no\)"),
        ("range", [0.5], r"attribute 'range' takes 2 value\(s\) \(float, int\), got 1: \[0\.5\]"),
        ("curve", "a,b", r"attribute 'curve' value 0: 'a,b' is not a valid tensor"),
        ("volume", 1, r"no attribute 'volume'; this model has: gain, invert"),
    ],
)
def test_wrong_values_are_refused_before_the_model_sees_them(model, name, values, message):
    with pytest.raises(ModelAttributeError, match=message):
        model.set_attribute(name, values)


def test_buffer_attribute_from_array(model):
    assert model.get_buffer_attributes() == ["ir#0"]
    model.set_buffer_attribute("ir#0", np.ones((2, 100), dtype=np.float32), 44100)
    assert model.get_attribute("ir") == ("Buffer(shape=[2, 100], sr=44100)",)


def test_buffer_attribute_from_audio_file(model, tmp_path):
    path = tmp_path / "ir.wav"
    soundfile.write(path, np.zeros((300, 2), dtype=np.float32), 22050)
    model.set_buffer_attribute_from_file("ir#0", path)
    assert model.get_attribute("ir") == ("Buffer(shape=[2, 300], sr=22050)",)


def test_buffer_refusal_is_reported(model):
    too_long = torch.zeros(1, BUFFER_MAX_SAMPLES + 1)
    with pytest.raises(ModelAttributeError, match=r"refused \[1, 48001\] samples at 48000 Hz for buffer 'ir#0' \(set_buffer_attribute returned -1\)"):
        model.set_buffer_attribute("ir#0", too_long, 48000)


def test_buffer_must_be_channels_by_samples(model):
    with pytest.raises(ModelAttributeError, match=r"buffer 'ir#0' takes audio \[channels, samples\], got shape \[100\]"):
        model.set_buffer_attribute("ir#0", torch.zeros(100), 48000)


def test_unknown_buffer_is_refused(model):
    with pytest.raises(ModelAttributeError, match=r"no buffer attribute 'ir#1'; this model has: ir#0"):
        model.set_buffer_attribute("ir#1", torch.zeros(1, 10), 48000)


def test_unreadable_audio_file(model, tmp_path):
    with pytest.raises(AudioFileError, match=r"missing\.wav: cannot read audio for buffer 'ir#0'"):
        model.set_buffer_attribute_from_file("ir#0", tmp_path / "missing.wav")


def test_legacy_layout_float_params_without_get_attributes(tmp_path):
    model = NNModel.load(build_legacy_attributes(tmp_path))
    assert model.methods["forward"].params == (1, 1, 1, 1)
    assert model.attributes == {"depth": AttributeSpec("depth", (AttributeType.FLOAT,))}
    model.set_attribute("depth", "0.25")
    assert model.get_attribute("depth") == (0.25,)


def test_describe_lists_types_and_current_values(model):
    attributes = model.describe()["attributes"]
    assert attributes["range"] == {"types": ["float", "int"], "type_ids": [2, 1], "value": [0.25, 8]}
    assert attributes["curve"]["value"] == [[0.0, 0.5, 1.0]]
    assert attributes["ir"] == {"types": ["buffer"], "type_ids": [5], "value": ["Buffer(empty)"]}


@pytest.mark.parametrize(
    ("types", "values", "expected"),
    [
        ((AttributeType.BOOL,), "1", [True]),
        ((AttributeType.BOOL,), np.bool_(False), [False]),
        ((AttributeType.INT,), "0x10", [16]),
        ((AttributeType.INT,), np.int64(5), [5]),
        ((AttributeType.FLOAT,), "1e-3", [0.001]),
        ((AttributeType.STR,), 3, ["3"]),
        ((AttributeType.BUFFER,), "ignored", ["ignored"]),
        ((AttributeType.FLOAT, AttributeType.STR), ("2", "x"), [2.0, "x"]),
    ],
)
def test_coerce_values(types, values, expected):
    assert coerce_values("a", types, values) == expected


def test_coerce_tensor_from_array():
    tensor = coerce_values("a", (AttributeType.TENSOR,), np.arange(3, dtype=np.int64))[0]
    assert tensor.dtype == torch.float32 and tensor.tolist() == [0.0, 1.0, 2.0]


def test_coerce_refuses_nan():
    with pytest.raises(ModelAttributeError, match=r"'nan' is not a valid float \(NaN is not a usable value\)"):
        coerce_values("a", (AttributeType.FLOAT,), "nan")


def test_json_values():
    assert to_json_value((torch.tensor([1.0]), 2, float("inf"))) == [[1.0], 2, "inf"]
