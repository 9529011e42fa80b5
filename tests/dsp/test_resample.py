import numpy as np
import pytest

from ravelive.dsp.polyphase import PolyphaseResampler
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


@pytest.mark.parametrize("quality", ["HQ", "live"])
@pytest.mark.parametrize("in_rate,out_rate", [(48000, 44100), (44100, 48000)])
def test_output_is_the_same_signal_on_the_new_time_grid(in_rate, out_rate, quality):
    seconds = 0.5
    frequency = 997.0
    t_in = np.arange(int(in_rate * seconds)) / in_rate
    x = np.sin(2 * np.pi * frequency * t_in).astype(np.float32)[None]
    stream = ResampleStream(in_rate, out_rate, channels=1, quality=quality)
    y = np.concatenate([stream.process(x[:, i : i + 333]) for i in range(0, x.shape[1], 333)], axis=1)
    t_out = np.arange(y.shape[1]) / out_rate
    expected = np.sin(2 * np.pi * frequency * t_out)
    settled = slice(out_rate // 100, None)  # after the filter's start-up (10 ms)
    np.testing.assert_allclose(y[0, settled], expected[settled], atol=1e-3)


@pytest.mark.parametrize("quality", ["HQ", "live"])
def test_reset_starts_a_new_stream(quality):
    stream = ResampleStream(48000, 44100, channels=1, quality=quality)
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
    message = "resample quality 'XQ' is not one of live, QQ, LQ, MQ, HQ, VHQ; serve's default is live .*, process's HQ"
    with pytest.raises(ConfigError, match=message):
        ResampleStream(48000, 44100, channels=1, quality="XQ")


# ---- quality "live": the low-delay polyphase FIR ----

@pytest.mark.parametrize("in_rate,out_rate", RATE_PAIRS)
def test_live_streamed_in_awkward_chunks_equals_one_call(in_rate, out_rate):
    x = np.random.default_rng(3).standard_normal((2, 20000)).astype(np.float32)
    whole = PolyphaseResampler(in_rate, out_rate, channels=2).process(x)
    stream = PolyphaseResampler(in_rate, out_rate, channels=2)
    pieces, start = [], 0
    for size in [1, 63, 64, 65, 511, 8193] * 4:
        pieces.append(stream.process(x[:, start : start + size]))
        start += size
    pieces.append(stream.process(x[:, start:]))
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)


def test_live_holds_back_about_30_frames_at_44k1_48k():
    down, up = ResampleStream(48000, 44100, 1, "live"), ResampleStream(44100, 48000, 1, "live")
    added = down.latency * 48000 / 44100 + up.latency
    assert added < 0.005 * 48000  # the target: at most 5 ms round trip (it is ~1.4 ms)


def tone_round_trip(frequency, quality="live", rate=48000, model_rate=44100, seconds=0.5):
    """Gain (dB) of a tone, and its largest other component (dBc), after stream -> model rate -> stream."""
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None]
    down, up = ResampleStream(rate, model_rate, 1, quality), ResampleStream(model_rate, rate, 1, quality)
    y = np.concatenate([up.process(down.process(x[:, i : i + 256])) for i in range(0, x.shape[1], 256)], axis=1)[0]
    settled = y[rate // 10 : rate // 10 + rate // 4]
    window = np.blackman(len(settled))
    spectrum = np.abs(np.fft.rfft(settled * window)) / (window.sum() / 2)
    bins = np.fft.rfftfreq(len(settled), 1 / rate)
    near = np.abs(bins - frequency) < 60.0
    return 20 * np.log10(spectrum[near].max() / 0.5), 20 * np.log10(spectrum[~near].max() / spectrum[near].max())


@pytest.mark.parametrize("frequency", [20.0, 1000.0, 10000.0, 16000.0, 18000.0])
def test_live_passband_is_flat_to_18_khz(frequency):
    gain, spurious = tone_round_trip(frequency)
    assert abs(gain) < 0.5  # the target; measured under 0.01 dB
    assert spurious < -70.0


@pytest.mark.parametrize("frequency", [22300.0, 23000.0, 23900.0])
def test_live_rejects_what_would_alias_at_the_model_rate(frequency):
    gain, _ = tone_round_trip(frequency)
    assert gain < -70.0  # above 22.05 kHz nothing survives the 44.1 kHz model rate


def test_live_refuses_a_rate_pair_with_a_huge_ratio():
    with pytest.raises(ConfigError, match=r"resample quality 'live' cannot convert 44100 Hz -> 48001 Hz: .* use "
                                          r"--resample-quality HQ for this pair"):
        ResampleStream(44100, 48001, channels=1, quality="live")


@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 44100), (44100, 48000), (48000, 16000)])
def test_live_inputs_for_is_the_exact_number_of_frames_that_releases_the_outputs(in_rate, out_rate):
    resampler = PolyphaseResampler(in_rate, out_rate, channels=1)
    rng = np.random.default_rng(3)
    for _ in range(40):
        wanted = int(rng.integers(1, 3000))
        frames = resampler.inputs_for(wanted)
        short = resampler.process(np.zeros((1, frames - 1), dtype=np.float32)).shape[1]
        assert short < wanted  # one frame fewer does not release them ...
        assert short + resampler.process(np.zeros((1, 1), dtype=np.float32)).shape[1] >= wanted  # ... that one does
