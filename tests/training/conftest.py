"""Test audio for the training tests, written with numpy + soundfile into tmp_path."""

import numpy as np
import pytest
import soundfile

LENGTH = 4096  # example length in the tests: small, so the files stay small and the tests fast


def sine(frames: int, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(frames) / rate)).astype(np.float32)


def write(path, audio: np.ndarray, rate: int, subtype: str = "FLOAT"):
    """audio [frames] or [frames, channels] -> path (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate, subtype=subtype)
    return path


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
