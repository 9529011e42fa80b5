import numpy as np
import pytest

from ravelive.dsp.resample import QUALITIES, ResampleStream, held_back_frames
from ravelive.errors import ConfigError

RATE_PAIRS = [(48000, 44100), (44100, 48000), (48000, 16000), (22050, 48000)]


@pytest.mark.parametrize("in_rate,out_rate", RATE_PAIRS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_output_never_trails_input_by_more_than_the_latency(in_rate, out_rate, quality):
    rng = np.random.default_rng(1)
    stream = ResampleStream(in_rate, out_rate, channels=2, quality=quality)
    fed = produced = 0
    worst = 0.0
    single_frames = np.ones(12000, dtype=int)  # long enough for VHQ's hold-back to peak
    for size in np.concatenate([single_frames, rng.integers(1, 9000, size=60)]):
        produced += stream.process(np.zeros((2, int(size)), dtype=np.float32)).shape[1]
        fed += int(size)
        worst = max(worst, fed * out_rate / in_rate - produced)
    assert worst <= stream.latency
    assert stream.latency - worst < 4  # the bound is tight, not a blanket allowance


@pytest.mark.parametrize("in_rate,out_rate", [(48000, 44100), (44100, 48000)])
def test_output_is_the_same_signal_on_the_new_time_grid(in_rate, out_rate):
    seconds = 0.5
    frequency = 997.0
    t_in = np.arange(int(in_rate * seconds)) / in_rate
    x = np.sin(2 * np.pi * frequency * t_in).astype(np.float32)[None]
    stream = ResampleStream(in_rate, out_rate, channels=1)
    y = np.concatenate([stream.process(x[:, i : i + 333]) for i in range(0, x.shape[1], 333)], axis=1)
    t_out = np.arange(y.shape[1]) / out_rate
    expected = np.sin(2 * np.pi * frequency * t_out)
    settled = slice(out_rate // 100, None)  # after the filter's start-up (10 ms)
    np.testing.assert_allclose(y[0, settled], expected[settled], atol=1e-3)


def test_reset_starts_a_new_stream():
    stream = ResampleStream(48000, 44100, channels=1)
    x = np.random.default_rng(2).standard_normal((1, 9600)).astype(np.float32)
    first = stream.process(x)
    stream.reset()
    np.testing.assert_array_equal(stream.process(x), first)


def test_hold_back_is_measured_once_per_rate_pair():
    held_back_frames.cache_clear()
    held_back_frames(48000, 44100)
    held_back_frames(48000, 44100)
    assert held_back_frames.cache_info().hits == 1


def test_non_positive_rate_is_refused():
    with pytest.raises(ConfigError, match="sample rates must be positive, got 0 Hz -> 48000 Hz"):
        ResampleStream(0, 48000, channels=1)


def test_unknown_quality_is_refused():
    with pytest.raises(ConfigError, match="resample quality 'XQ' is not one of QQ, LQ, MQ, HQ, VHQ; the default is HQ"):
        ResampleStream(48000, 44100, channels=1, quality="XQ")
