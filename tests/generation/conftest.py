"""A tiny autoencoder, a small latent corpus of tones encoded by it, and a tiny denoiser and prior trained on it."""

import pytest
import soundfile
from latent_fixtures import LENGTH, RATE, TRAIN_STEPS, tone

from ravelive.generation.diffusion_training import train_diffusion
from ravelive.generation.latents import encode_corpus
from ravelive.generation.prior_training import train_prior
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    return export_autoencoder(AutoencoderConfig(), tmp_path_factory.mktemp("model") / "ae.ts", seed=3)


@pytest.fixture(scope="session")
def latents_dir(model_file, tmp_path_factory):
    audio = tmp_path_factory.mktemp("audio")
    for index, frequency in enumerate((220.0, 330.0, 440.0)):
        soundfile.write(audio / f"{index}.wav", tone(1.0, frequency), RATE)
    out = tmp_path_factory.mktemp("latents")
    encode_corpus(model_file, [audio], out, LENGTH)
    return out


@pytest.fixture(scope="session")
def diffusion_run(latents_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "ld"
    train_diffusion(latents_dir, run, ["tiny"], [f"steps={TRAIN_STEPS}", "device=cpu"])
    return run


@pytest.fixture(scope="session")
def prior_run(model_file, latents_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "prior"
    train_prior(model_file, latents_dir, run, ["tiny"], [f"steps={TRAIN_STEPS}", "device=cpu"])
    return run
