"""Descriptors at the latent rate, against values known in closed form."""

import numpy as np
import pytest
import torch

from ravelive.dsp.descriptors import DESCRIPTORS, Descriptors
from ravelive.errors import ConfigError

RATE = 48000
HOP = 512
BIN = RATE / (2 * HOP)  # 46.875 Hz: the default window is twice the hop
TONE = 16 * BIN  # 750 Hz: on a bin, and a whole number of periods per hop


def measure(audio: np.ndarray, names=DESCRIPTORS) -> dict[str, np.ndarray]:
    values = Descriptors(names, RATE, HOP)(torch.from_numpy(np.atleast_2d(audio).astype(np.float32)))
    return {name: values[0, index].numpy() for index, name in enumerate(names)}


def sine(frequency: float, amplitude: float = 0.5, frames: int = 40) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(frames * HOP) / RATE)


def test_a_sine_has_its_amplitude_its_frequency_no_spread_and_no_flatness():
    values = {name: value[2:-2] for name, value in measure(sine(TONE)).items()}  # inner frames: no padding edge
    np.testing.assert_allclose(values["rms"], 0.5 / np.sqrt(2), rtol=1e-4)
    np.testing.assert_allclose(values["centroid"], TONE, atol=1.0)
    assert (values["bandwidth"] < 2 * BIN).all()  # the Hann main lobe only
    assert (values["flatness"] < 1e-3).all()
    assert (np.abs(values["rolloff"] - TONE) <= BIN).all()


def test_two_equal_tones_centre_between_them_and_spread_half_their_distance():
    values = {name: value[2:-2] for name, value in measure(sine(TONE) + sine(4 * TONE)).items()}
    np.testing.assert_allclose(values["centroid"], 2.5 * TONE, rtol=0.01)
    np.testing.assert_allclose(values["bandwidth"], 1.5 * TONE, rtol=0.03)


def test_white_noise_is_flat_and_rolls_off_at_85_percent_of_nyquist():
    noise = np.random.default_rng(0).standard_normal(400 * HOP) * 0.1
    values = measure(noise)
    assert abs(np.median(values["flatness"]) - np.exp(-np.euler_gamma)) < 0.05  # exponential power: e^-gamma
    assert abs(np.median(values["centroid"]) - RATE / 4) < 0.02 * RATE / 4
    assert abs(np.median(values["rolloff"]) - 0.85 * RATE / 2) < 0.02 * RATE / 2


def test_frame_k_describes_the_samples_of_latent_frame_k_and_silence_is_finite():
    audio = np.zeros(10 * HOP)
    audio[4 * HOP : 5 * HOP] = sine(TONE, frames=1)
    values = measure(audio)
    assert len(values["rms"]) == 10
    assert np.flatnonzero(values["rms"]).tolist() == [4]
    assert values["centroid"][0] == 0 and values["rolloff"][0] == 0 and values["flatness"][0] == pytest.approx(1.0)
    assert all(np.isfinite(value).all() for value in values.values())


def test_batches_keep_their_rows_and_a_partial_frame_is_left_out():
    batch = np.stack([sine(TONE, 0.5, 8), sine(TONE, 0.25, 8)])
    values = Descriptors(("rms", "centroid"), RATE, HOP)(torch.from_numpy(np.pad(batch, ((0, 0), (0, 100)))))
    assert values.shape == (2, 2, 8)
    np.testing.assert_allclose(values[:, 0, 3].numpy(), [0.5 / np.sqrt(2), 0.25 / np.sqrt(2)], rtol=1e-4)


def test_unknown_names_and_bad_windows_are_one_line_each():
    with pytest.raises(ConfigError, match="descriptors loudness: expected one or more of rms, centroid"):
        Descriptors(("rms", "loudness"), RATE, HOP)
    with pytest.raises(ConfigError, match="window 513 with hop 512"):
        Descriptors(("rms",), RATE, HOP, window=513)
