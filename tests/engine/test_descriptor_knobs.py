"""A descriptor-conditioned export in the engine: its knobs are declared parameters and reach decode."""

import dataclasses

import numpy as np
import pytest
import torch

from ravelive.control.model_params import ModelControls
from ravelive.dsp.latent import LatentTransform
from ravelive.engine.stream import StreamEngine
from ravelive.models.nn_model import NNModel
from ravelive.models.rave import RaveModel, export_rave, resolve_config

CONDITIONED = resolve_config(["tiny", "descriptors"])  # rms, centroid after 8 latent dims, ratio 32


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory):
    torch.manual_seed(0)
    model = RaveModel(CONDITIONED)
    model.conditioning[0].set_range(torch.tensor([0.0, 200.0]), torch.tensor([0.5, 8000.0]))
    return NNModel.load(export_rave(CONDITIONED, tmp_path_factory.mktemp("d") / "d.ts", state_dict=model.state_dict()))


def test_each_descriptor_is_a_knob_that_follows_the_input_by_default(conditioned):
    controls = ModelControls.from_model(conditioned)
    specs = {spec.name: spec for spec in controls.specs}
    assert (specs["descriptor/centroid"].minimum, specs["descriptor/centroid"].maximum) == (-1.0, 1.0)
    assert specs["descriptor/rms/follow"].default is True
    assert controls.latent_size == 8  # the latent edits still act on the latent alone
    values = controls.store().values() | {"descriptor/centroid/follow": False, "descriptor/centroid": 0.5}
    latent = controls.derive(values).latent
    assert latent.descriptors == (None, 0.5) and latent.active


def play(model: NNModel, transform: LatentTransform, audio: np.ndarray) -> np.ndarray:
    model.reset_state()
    engine = StreamEngine(model, block=256)
    engine.latent = transform
    return engine.push(audio)


def test_a_knob_changes_the_sound_and_following_keeps_forward(conditioned):
    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(256 * 16) / 44100, dtype=np.float32)[None]
    neutral = LatentTransform.identity(8)
    followed = play(conditioned, neutral, audio)  # nothing active: forward, which follows its input itself
    low = play(conditioned, dataclasses.replace(neutral, descriptors=(None, -1.0)), audio)  # centroid knob at -1
    high = play(conditioned, dataclasses.replace(neutral, descriptors=(None, 1.0)), audio)
    assert np.isfinite(low).all() and np.isfinite(high).all()
    assert not np.allclose(low, high, atol=1e-4)
    assert not np.allclose(followed, high, atol=1e-4)
