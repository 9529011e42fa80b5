"""Declarations derived from real model files, the per-block snapshot, attributes applied on the worker."""

import dataclasses

import pytest

from ravelive.control.model_params import AttributeApplier, ModelControls
from ravelive.dsp.latent import LatentTransform
from ravelive.dsp.latent_loop import LoopControl
from ravelive.errors import ParameterError
from ravelive.models.nn_model import NNModel


@pytest.fixture
def attributes_model(attributes_model_path):
    return NNModel.load(attributes_model_path)


def test_attribute_parameters_come_from_the_file(attributes_model):
    specs = {spec.name: spec for spec in ModelControls.from_model(attributes_model).specs}
    assert specs["attr/gain"].default == 1.0 and specs["attr/mode"].default == "clean"
    assert specs["attr/range/0"].default == 0.25 and specs["attr/range/1"].default == 8
    assert "attr/curve" not in specs and "attr/ir" not in specs  # tensor and buffer: not one OSC value
    assert specs["method"].choices == tuple(attributes_model.methods)


def test_latent_parameters_per_dimension(codec_model):
    controls = ModelControls.from_model(codec_model)
    names = {spec.name for spec in controls.specs}
    fields = ("bias", "scale", "freeze", "replace", "replace_value", "noise")
    assert controls.latent_size == 4
    assert {f"latent/{d}/{f}" for d in range(4) for f in fields} <= names
    assert "latent/4/bias" not in names


def test_snapshot_holds_a_ready_latent_transform_and_linear_gains(codec_model):
    store = ModelControls.from_model(codec_model).store()
    default = store.snapshot().latent
    assert not default.active and dataclasses.replace(default, loop=LoopControl()) == LatentTransform.identity(4)
    store.update({"latent/1/bias": 0.5, "latent/2/replace": True, "latent/2/replace_value": -1.0,
                  "latent/3/freeze": True, "gain/out": -6.0, "mix": 0.5})
    snapshot = store.snapshot()
    assert snapshot.latent.bias == (0.0, 0.5, 0.0, 0.0)
    assert snapshot.latent.replace == (None, None, -1.0, None)
    assert snapshot.latent.freeze == (False, False, False, True)
    assert snapshot.output_gain == pytest.approx(0.501, abs=1e-3) and snapshot.wet == 0.5
    store.set("bypass", 1)
    assert store.snapshot().wet == 0.0 and store.snapshot().bypass


def test_latent_bias_out_of_range_is_refused(codec_model):
    store = ModelControls.from_model(codec_model).store()
    with pytest.raises(ParameterError, match=r"latent/3/bias: 9\.0 is out of range \[-5, 5\]"):
        store.set("latent/3/bias", 9.0)


def test_applier_sets_changed_attributes_and_puts_refusals_back(attributes_model):
    controls = ModelControls.from_model(attributes_model)
    store = controls.store()
    applier = AttributeApplier(attributes_model, controls, store)
    store.update({"attr/gain": 0.5, "attr/range/0": 0.75})
    applier.apply(store.snapshot())
    assert attributes_model.get_attribute("gain") == (0.5,)
    assert attributes_model.get_attribute("range") == (0.75, 8)
    heard = []
    store.add_listener(heard.append)
    store.set("attr/gain", -1.0, source="client")  # the model's setter refuses negatives
    applier.apply(store.snapshot())
    assert applier.refusals == 1
    assert store.get("attr/gain") == 0.5  # what the model really plays
    assert heard[-1].source is None  # a server change: every client hears it


def test_install_after_a_model_swap_keeps_common_values(codec_model, attributes_model):
    store = ModelControls.from_model(codec_model).store()
    store.update({"gain/out": -3.0, "latent/0/bias": 1.0})
    ModelControls.from_model(attributes_model).install(store)
    assert store.get("gain/out") == -3.0 and "latent/0/bias" not in store.specs
    assert store.snapshot().latent is None and store.snapshot().attributes["gain"] == (1.0,)


def test_methods_whose_output_is_not_audio_need_the_flag(codec_model):
    controls = ModelControls.from_model(codec_model)
    assert dict(controls.control_methods) == {"encode": "4 channels at 1/64 of the audio rate"}
    store = controls.store()
    assert store.get("method") == "forward" and store.get("allow_control_output") is False
    with pytest.raises(ParameterError, match=r"method: 'encode' outputs 4 channels at 1/64 of the audio rate, not "
                                             r"audio .*/ravelive/allow_control_output 1"):
        store.set("method", "encode")
    store.set("method", "decode")  # latents in, audio out: audio
    store.update({"method": "encode", "allow_control_output": True})  # both in one write
    with pytest.raises(ParameterError, match=r"allow_control_output: 'encode' .* select an audio method "
                                             r"\(decode, forward\) first"):
        store.set("allow_control_output", False)


def test_the_flag_default_comes_from_the_server_and_survives_a_swap(codec_model, attributes_model):
    store = ModelControls.from_model(codec_model, allow_control_output=True).store()
    ModelControls.from_model(attributes_model).install(store)
    assert store.get("allow_control_output") is True
