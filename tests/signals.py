"""Test signals, seeded so every run hears the same thing."""

import numpy as np


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise at 0.5 RMS, float32 [channels, frames]."""
    return (0.5 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)
