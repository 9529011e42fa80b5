"""What the training tests share besides fixtures: the example length, test audio, a quick run's settings.

A module of its own, not conftest.py: `from conftest import ...` finds whichever conftest pytest loaded
last, another folder's when several folders run together.
"""

import numpy as np
import soundfile

from ravelive.training.loop import train_run

LENGTH = 4096  # example length in the tests: small, so the files stay small and the tests fast
SAMPLE_RATE = 44100
# tiny model, short examples, a small discriminator: a CPU core trains a few steps per second
QUICK = (
    "example_length=8192", "batch_size=4", "lr=1e-3", "discriminator_capacity=2", "discriminator_layers=2",
    "discriminator_scales=2", "periods=[2,3]", "log_interval=5", "audio_interval=50",
)

QUICK_STEPS = 3  # a checkpoint with trained-ish weights, for tests of what comes after training (export, latents)


def quick_run(audio, folder, steps: int = QUICK_STEPS):
    """A tiny run of `steps` QUICK steps on `audio` in folder/run, checkpointed at the end; its folder."""
    run = folder / "run"
    train_run(audio, run, ("tiny",), QUICK + (f"steps={steps}", f"checkpoint_interval={steps}"))
    return run


def sine(frames: int, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(frames) / rate)).astype(np.float32)


def write(path, audio: np.ndarray, rate: int, subtype: str = "FLOAT"):
    """audio [frames] or [frames, channels] -> path (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate, subtype=subtype)
    return path
