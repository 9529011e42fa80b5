"""Fixtures of the training tests: a corpus folder tree and a session's sines (helpers: training_fixtures)."""

import numpy as np
import pytest
import soundfile
from training_fixtures import LENGTH, SAMPLE_RATE, sine, write


@pytest.fixture
def corpus(tmp_path):
    """A folder tree: a mono sine, stereo noise in a nested folder, a 48 kHz sine, a corrupt and a short file.

    At 44.1 kHz and LENGTH-frame examples: sine 3.5 examples (3), stereo 2 (2), 48 kHz 5 * 4096 * 44100 // 48000
    = 18816 frames (4); 9 examples in all.
    """
    root = tmp_path / "audio"
    rng = np.random.default_rng(1)
    write(root / "sine.wav", sine(LENGTH * 7 // 2, 44100), 44100)
    write(root / "deep" / "er" / "stereo.flac", rng.uniform(-0.5, 0.5, (2 * LENGTH, 2)).astype(np.float32), 44100,
          subtype="PCM_24")
    write(root / "rate48k.wav", sine(5 * LENGTH, 48000, freq=1000.0), 48000)
    (root / "corrupt.wav").write_bytes(rng.bytes(5000))
    write(root / "short.wav", sine(LENGTH // 2, 44100), 44100)
    (root / "notes.txt").write_text("not audio, not picked up")
    return root


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
