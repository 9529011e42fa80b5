"""Fixtures of the training tests: a folder of short synthetic recordings and the settings of a quick run."""

import numpy as np
import pytest
import soundfile

SAMPLE_RATE = 44100
# tiny model, short examples, a small discriminator: a CPU core trains a few steps per second
QUICK = (
    "example_length=8192", "batch_size=4", "lr=1e-3", "discriminator_capacity=2", "discriminator_layers=2",
    "discriminator_scales=2", "periods=[2,3]", "log_interval=5", "audio_interval=50",
)


@pytest.fixture(scope="session")
def sines(tmp_path_factory):
    """Eight .wav files of 1-2 s, each a sum of three sines of random pitch, level and phase (seeded)."""
    folder = tmp_path_factory.mktemp("sines")
    rng = np.random.default_rng(0)
    for index in range(8):
        t = np.arange(int(SAMPLE_RATE * rng.uniform(1, 2))) / SAMPLE_RATE
        partials = [
            rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(100, 2000) * t + rng.uniform(0, 2 * np.pi))
            for _ in range(3)
        ]
        soundfile.write(folder / f"sines{index}.wav", np.sum(partials, 0).astype(np.float32), SAMPLE_RATE)
    return folder
