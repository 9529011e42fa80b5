"""Test signals, seeded so every run hears the same thing."""

import numpy as np


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise at 0.5 RMS, float32 [channels, frames]."""
    return (0.5 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


def true_peak(x: np.ndarray, factor: int = 8, edge: int = 1000) -> float:
    """Peak of the band-limited signal x [..., n], oversampled `factor` times by FFT, `edge` samples
    away from both ends (the FFT treats the signal as periodic: the wrap-around jump would ring there)."""
    n = x.shape[-1]
    up = np.fft.irfft(np.fft.rfft(x, axis=-1), n * factor, axis=-1) * factor
    return float(np.abs(up[..., edge * factor : (n - edge) * factor]).max())


def band_limited_noise(channels: int, frames: int, cutoff: int, rms: float, rate: int = 48000,
                       seed: int = 0) -> np.ndarray:
    """White noise with nothing above `cutoff` Hz (what a DAC reconstructs), at `rms`; float32 [channels, frames]."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal((channels, frames)), axis=-1)
    spectrum[:, int(cutoff * frames / rate) :] = 0
    x = np.fft.irfft(spectrum, frames, axis=-1)
    return (rms * x / x.std()).astype(np.float32)


def in_chunks(processor, x: np.ndarray, sizes) -> np.ndarray:
    """`processor.process` over `x` [ch, n] in chunks of `sizes` (cycled), joined: to compare with one call."""
    out, start, index = [], 0, 0
    while start < x.shape[1]:
        size = sizes[index % len(sizes)]
        out.append(processor.process(x[:, start : start + size]))
        start, index = start + size, index + 1
    return np.concatenate(out, axis=1)
