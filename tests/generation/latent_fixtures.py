"""What the generation tests share: the tiny autoencoder's rate and ratio, the sequence length, a test tone."""

import numpy as np

RATE = 48000
RATIO = 512  # AutoencoderConfig's default strides 8*4*4*4
LENGTH = 16  # frames per sequence: 8192 samples, 0.17 s; the tiny denoiser downsamples by 4
TRAIN_STEPS = 150


def tone(seconds: float, frequency: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.4 * np.sin(2 * np.pi * frequency * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)
