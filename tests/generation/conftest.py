"""A tiny autoencoder, a small latent corpus of tones encoded by it, and a tiny denoiser trained on the corpus."""

import numpy as np
import pytest
import soundfile

from ravelive.generation.diffusion_training import train_diffusion
from ravelive.generation.latents import encode_corpus
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder

RATE = 48000
RATIO = 512  # AutoencoderConfig's default strides 8*4*4*4
LENGTH = 16  # frames per sequence: 8192 samples, 0.17 s; the tiny denoiser downsamples by 4
TRAIN_STEPS = 150


def tone(seconds: float, frequency: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.4 * np.sin(2 * np.pi * frequency * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


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
