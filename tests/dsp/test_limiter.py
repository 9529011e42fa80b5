"""TruePeakLimiter: never above the ceiling between samples, unity below it, exact delay, any chunking."""

import numpy as np
import pytest

from ravelive.dsp.limiter import CEILING_DBTP, TruePeakLimiter
from signals import band_limited_noise, in_chunks, true_peak

RATE = 48000
CEILING = 10 ** (CEILING_DBTP / 20)
PLUS_24_DB = 10 ** (24 / 20)


def sine(frequency: float, gain: float, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * RATE))
    wave = gain * np.sin(2 * np.pi * frequency * t / RATE + 0.3)
    return np.tile(wave, (channels, 1)).astype(np.float32)


@pytest.mark.parametrize("frequency", [50, 1000, 9000, 15000, 20000])
def test_a_sine_24_db_over_full_scale_stays_under_the_ceiling_in_true_peak(frequency):
    limiter = TruePeakLimiter(1, RATE)
    y = limiter.process(sine(frequency, PLUS_24_DB))
    assert true_peak(y) <= CEILING
    assert true_peak(y) > 10 ** (-2.0 / 20) * CEILING  # limited, not muted


@pytest.mark.parametrize("period", [7, 37, 48, 480])
def test_a_full_scale_square_overshoots_between_samples_but_not_after_the_limiter(period):
    t = np.arange(RATE)
    square = np.where((t // (period / 2)) % 2 == 0, 1.0, -1.0).astype(np.float32)[None]
    assert true_peak(square) > 1.2  # the naive square's inter-sample peaks (+2 to +3 dB)
    assert true_peak(TruePeakLimiter(1, RATE).process(square)) <= CEILING


def test_loud_noise_band_limited_to_20_khz_stays_under_the_ceiling_on_both_channels():
    x = band_limited_noise(2, RATE, cutoff=20000, rms=4.0)  # +12 dB RMS, what a DAC reconstructs
    y = TruePeakLimiter(2, RATE).process(x)
    assert true_peak(y) <= CEILING
    assert np.abs(y).max() <= CEILING  # every sample, too


def test_signals_under_the_ceiling_come_out_unchanged_after_exactly_the_delay():
    x = np.random.default_rng(1).uniform(-0.25, 0.25, (2, RATE)).astype(np.float32)  # white: peaks between samples
    limiter = TruePeakLimiter(2, RATE)
    y = limiter.process(x)
    assert limiter.delay == round(0.0015 * RATE) - 1 + 8  # lookahead - 1 + the interpolator's half length
    np.testing.assert_array_equal(y[:, : limiter.delay], 0.0)
    np.testing.assert_array_equal(y[:, limiter.delay :], x[:, : -limiter.delay])
    assert limiter.gain == 1.0


def test_an_impulse_arrives_at_the_delay_and_a_loud_one_is_brought_to_the_ceiling():
    impulse = np.zeros((1, 4000), dtype=np.float32)
    impulse[0, 100] = 0.5
    impulse[0, 2000] = 8.0
    limiter = TruePeakLimiter(1, RATE)
    y = limiter.process(impulse)
    assert np.flatnonzero(y)[0] == 100 + limiter.delay
    assert y[0, 100 + limiter.delay] == 0.5
    assert 0.5 * CEILING < y[0, 2000 + limiter.delay] <= CEILING


def test_the_gain_recovers_after_a_loud_passage():
    x = np.concatenate([sine(1000, PLUS_24_DB, 0.2), sine(1000, 0.25, 2.0)], axis=1)
    limiter = TruePeakLimiter(1, RATE)
    y = limiter.process(x)
    assert limiter.gain == 1.0
    tail = slice(x.shape[1] - RATE // 2, x.shape[1])
    np.testing.assert_array_equal(y[:, tail], x[:, tail.start - limiter.delay : tail.stop - limiter.delay])


@pytest.mark.parametrize("sizes", [[1], [63], [64], [65], [511], [1, 63, 64, 65, 511, 8193]])
def test_streaming_in_any_chunk_sizes_equals_one_shot(sizes):
    rng = np.random.default_rng(2)
    x = np.concatenate([sine(3000, PLUS_24_DB, 0.1, 2), rng.uniform(-0.3, 0.3, (2, 4800)).astype(np.float32),
                        sine(200, 3.0, 0.1, 2)], axis=1)
    whole = TruePeakLimiter(2, RATE).process(x)
    np.testing.assert_allclose(in_chunks(TruePeakLimiter(2, RATE), x, sizes), whole, rtol=0, atol=1e-6)


def test_a_ceiling_above_full_scale_is_refused():
    with pytest.raises(ValueError, match="above full scale"):
        TruePeakLimiter(1, RATE, ceiling_db=1.0)


def test_a_non_finite_sample_plays_zero_and_the_limiter_goes_on_limiting():
    x = sine(1000, 0.5, 0.2)
    x[0, 1000], x[0, 1001] = np.nan, np.inf
    x[0, 6000:] *= 8  # loud after the NaN: still limited
    limiter = TruePeakLimiter(1, RATE)
    y = limiter.process(x)
    assert np.isfinite(y).all() and y[0, 1000 + limiter.delay] == 0.0
    assert np.abs(y[0, 7000:]).max() <= CEILING

