"""serve's prior: `prior/play` feeds the prior's frames to decode in place of the encoder's, edits still apply."""

import numpy as np
import pytest
import soundfile
import torch
from headless_serve import headless_config, play_collecting_latents
from latent_fixtures import RATE, RATIO

from ravelive.control.model_params import PRIOR_PLAY, PRIOR_TEMPERATURE, ModelControls
from ravelive.engine.stream import StreamEngine
from ravelive.errors import ConfigError, ParameterError
from ravelive.generation.prior_export import export_prior
from ravelive.generation.prior_file import open_prior
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.models.nn_model import NNModel
from ravelive.server import Server

BLOCKS = 6


@pytest.fixture(scope="module")
def prior_file(prior_run, tmp_path_factory):
    return export_prior(prior_run, tmp_path_factory.mktemp("prior") / "prior.ts").path


def play(model_file, prior_file, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Silence through a fresh engine with the prior; (the latent frames decoded, the audio out)."""
    model = NNModel.load(model_file)
    engine = StreamEngine(model, prior=open_prior(prior_file, model))
    engine.warm_prior()
    store = ModelControls.from_model(model, prior=True).store()
    store.update(settings)
    engine.latent = store.snapshot().latent
    latents = []
    engine.latent_sink = lambda z: latents.append(z.copy())
    audio = engine.push(np.zeros((engine.channels, BLOCKS * engine.block), np.float32))
    return np.concatenate(latents, axis=1), audio


def test_the_parameters_are_declared_once_with_their_range(model_file):
    store = ModelControls.from_model(NNModel.load(model_file), prior=True).store()
    assert store.get(PRIOR_PLAY) is False and store.get(PRIOR_TEMPERATURE) == 1.0
    with pytest.raises(ParameterError, match=r"prior/temperature: 3(\.0)? is out of range \[0, 2\]"):
        store.set(PRIOR_TEMPERATURE, 3.0)
    assert PRIOR_PLAY not in ModelControls.from_model(NNModel.load(model_file)).store().specs  # no --prior, no knob


def test_playing_the_prior_decodes_its_frames_instead_of_the_input(model_file, prior_file):
    latents, audio = play(model_file, prior_file, {PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0})
    reference = NNModel.load(prior_file)
    with torch.inference_mode():
        expected = reference("prior", torch.zeros(1, 1, latents.shape[1]))[0].numpy()
    np.testing.assert_allclose(latents, expected, rtol=1e-5, atol=1e-5)  # the prior's mean path, call after call
    silent_latents, silent_audio = play(model_file, prior_file, {PRIOR_PLAY: False})
    assert not np.allclose(latents, silent_latents, atol=1e-3)  # not what the encoder hears in the silence
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0


def test_the_latent_edits_act_on_the_prior_frames(model_file, prior_file):
    plain, _ = play(model_file, prior_file, {PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0})
    edited, _ = play(model_file, prior_file, {PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0, "latent/0/bias": 1.5,
                                             "latent/1/scale": 0.0, "latent/2/freeze": True})
    np.testing.assert_allclose(edited[0], plain[0] + 1.5, rtol=1e-5, atol=1e-5)
    assert np.all(edited[1] == 0.0)
    assert np.all(edited[2] == edited[2, 0])


def test_temperature_makes_it_wander(model_file, prior_file):
    torch.manual_seed(0)
    mean_path, _ = play(model_file, prior_file, {PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0})
    sampled, _ = play(model_file, prior_file, {PRIOR_PLAY: True, PRIOR_TEMPERATURE: 1.0})
    assert sampled.shape == mean_path.shape == (8, BLOCKS * StreamEngine(NNModel.load(model_file)).block // RATIO)
    assert not np.allclose(sampled, mean_path, atol=1e-3)


def test_a_prior_for_another_model_is_refused_in_one_line(prior_file, tmp_path):
    other = NNModel.load(export_autoencoder(AutoencoderConfig(latent_dims=4), tmp_path / "other.ts", seed=1))
    with pytest.raises(ConfigError, match=r"other.ts decodes 4 latents at ratio 512, 48000 Hz, but prior.ts plays 8"):
        open_prior(prior_file, other)
    with pytest.raises(ConfigError, match=r"prior.ts: method 'prior' \[1, 512, 8, 512\] at 48000 Hz does not feed "
                                          r"other.ts's decode \(4 latents at ratio 512, 48000 Hz\)"):
        StreamEngine(other, prior=NNModel.load(prior_file))


def test_serve_plays_the_prior_when_asked_and_refuses_another_models(model_file, prior_file, tmp_path):
    recorded = tmp_path / "out.wav"
    server = Server(headless_config(model_file, tmp_path, RATE, prior=prior_file, output_file=recorded))
    assert server.swapper.playing.engine.prior is not None
    server.controls.update({PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0})
    decoded = play_collecting_latents(server, RATE // 256)
    played = soundfile.read(recorded, dtype="float32")[0]
    assert np.all(np.isfinite(played)) and np.abs(played).max() > 1e-3
    with torch.inference_mode():
        expected = NNModel.load(prior_file)("prior", torch.zeros(1, 1, decoded.shape[1]))[0].numpy()
    np.testing.assert_allclose(decoded, expected, rtol=1e-5, atol=1e-6)  # from the first block: the prior's mean path
    other = export_autoencoder(AutoencoderConfig(latent_dims=4), tmp_path / "other.ts", seed=1)
    with pytest.raises(ConfigError, match=r"other.ts decodes 4 latents .* but prior.ts plays 8"):
        Server(headless_config(other, tmp_path, RATE, prior=prior_file))
