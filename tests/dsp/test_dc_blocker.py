"""DCBlocker (the callback's C DC blocker): removes an offset, keeps the audio band, no delay, any chunking."""

import numpy as np
import pytest

from ravelive.dsp.dc_blocker import DCBlocker
from signals import in_chunks

RATE = 48000


def test_a_dc_offset_decays():
    x = np.full((2, RATE), 0.5, dtype=np.float32)
    y = DCBlocker(2, RATE).process(x)
    assert y[0, 0] == pytest.approx(0.5)  # no delay: the step comes through at once ...
    assert np.abs(y[:, RATE // 5 :]).max() < 0.5 * 0.01  # ... and is under 1% after 0.2 s
    assert np.abs(y[:, -100:]).max() < 1e-6


def test_an_offset_riding_on_a_tone_is_removed_and_the_tone_kept():
    t = np.arange(2 * RATE)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t / RATE)
    y = DCBlocker(1, RATE).process((tone + 0.4).astype(np.float32)[None])[0]
    late = slice(RATE, 2 * RATE)
    assert abs(y[late].mean()) < 1e-3
    assert np.abs(y[late] - tone[late]).max() < 0.005  # 440 Hz passes: -0.001 dB, +0.65 degrees


def test_an_impulse_comes_out_at_once():
    x = np.zeros((1, 1000), dtype=np.float32)
    x[0, 10] = 1.0
    y = DCBlocker(1, RATE).process(x)
    assert np.flatnonzero(np.abs(y) > 0.5).tolist() == [10]
    assert y[0, 10] == 1.0


@pytest.mark.parametrize("sizes", [[1], [63], [64], [65], [511], [1, 63, 64, 65, 511, 8193]])
def test_streaming_in_any_chunk_sizes_equals_one_shot(sizes):
    x = (np.random.default_rng(0).uniform(-0.5, 0.5, (2, 20000)) + 0.25).astype(np.float32)
    whole = DCBlocker(2, RATE).process(x)
    np.testing.assert_array_equal(in_chunks(DCBlocker(2, RATE), x, sizes), whole)


def test_a_nan_plays_zero_and_the_filter_restarts_from_silence():
    blocker = DCBlocker(1, RATE)
    blocker.process(np.full((1, 500), 0.5, dtype=np.float32))
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 300)).astype(np.float32)
    y = blocker.process(np.concatenate([np.array([[np.nan]], dtype=np.float32), x], axis=1))
    assert y[0, 0] == 0.0
    np.testing.assert_array_equal(y[:, 1:], DCBlocker(1, RATE).process(x))
