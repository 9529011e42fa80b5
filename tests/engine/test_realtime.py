"""The realtime scheduler against stand-in processors (the real engine is exercised in tests/test_server.py)."""

import time

import numpy as np
import pytest

from ravelive.engine.realtime import Realtime, RealtimeConfig
from ravelive.errors import ConfigError

RATE = 8000
PERIOD = 64
BLOCK = 256


class BlockDelay:
    """Stand-in for the engine behind Controlled: returns gain * input, whole blocks at a time.

    Output sample j belongs `latency` samples after input j (at least BLOCK - 1: a block's first
    sample waits for its last). It checks that its input is the ramp 0, 1, 2 ... without a gap (the
    model stream never skips), and can sleep inside chosen blocks to play a model that is sometimes
    too slow.
    """

    step = BLOCK

    def __init__(self, latency: int = BLOCK - 1, gain: float = 1.0, slow_blocks=(), sleep: float = 0.0, ramp=True):
        self.latency = latency
        self.ramp = ramp
        self.gain = gain
        self.slow_blocks = set(slow_blocks)
        self.sleep = sleep
        self.pending = np.zeros((1, 0), dtype=np.float32)
        self.seen = 0
        self.expected = None
        self.pushes = []  # frames of each push

    def push(self, x: np.ndarray) -> np.ndarray:
        self.pushes.append(x.shape[1])
        if self.ramp and self.expected is not None:
            assert x[0, 0] == self.expected, "input skipped or reordered"
        self.expected = x[0, -1] + 1
        for _ in range((self.seen + x.shape[1]) // BLOCK - self.seen // BLOCK):
            if (self.seen // BLOCK) in self.slow_blocks:
                time.sleep(self.sleep)
        self.seen += x.shape[1]
        joined = np.concatenate([self.pending, x], axis=1)
        whole = joined.shape[1] - joined.shape[1] % BLOCK
        self.pending = joined[:, whole:]
        return self.gain * joined[:, :whole]


def make(processor, margin=PERIOD, fallback="dry", startup=0):
    config = RealtimeConfig(sample_rate=RATE, channels=1, period=PERIOD, block=BLOCK, margin=margin,
                            ring_frames=1 << 14, fallback=fallback, fade=16, startup=startup)
    return Realtime(processor, config)


def drive(realtime, signal, wait_for_worker: bool):
    """Run the callback over `signal` period by period; either wait for the worker or keep real time."""
    played = np.zeros_like(signal)
    for start in range(0, len(signal), PERIOD):
        if wait_for_worker:
            deadline = time.monotonic() + 1
            while realtime.ready < realtime.played + PERIOD and time.monotonic() < deadline:
                time.sleep(0.0005)
        else:
            time.sleep(PERIOD / RATE)
        realtime.callback(signal[start : start + PERIOD], played[start : start + PERIOD])
    return played


def ramp(n):
    return np.arange(n, dtype=np.float32)[:, None]


def test_output_is_input_delayed_by_the_reported_latency():
    realtime = make(BlockDelay())
    realtime.start()
    signal = ramp(40 * PERIOD) + 1
    played = drive(realtime, signal, wait_for_worker=True)
    realtime.close()
    assert realtime.latency == BLOCK  # one period of budget: the block's first sample plays in the next period
    np.testing.assert_array_equal(played[realtime.latency :], signal[: -realtime.latency])
    assert not played[: realtime.latency].any()
    assert realtime.counters.late_blocks == 0
    assert realtime.counters.callback_errors == 0


def test_the_worker_pushes_whole_blocks_only_and_one_period_of_margin_suffices():
    processor = BlockDelay()
    realtime = make(processor, margin=PERIOD)  # the least margin: the worker has one period per block
    realtime.start()
    signal = ramp(40 * PERIOD) + 1
    played = drive(realtime, signal, wait_for_worker=True)
    realtime.close()
    assert set(processor.pushes) == {BLOCK}
    assert len(processor.pushes) >= len(signal) // BLOCK - 1  # the last may still be in flight at close()
    assert realtime.counters.late_blocks == 0
    np.testing.assert_array_equal(played[realtime.latency :], signal[: -realtime.latency])


def test_late_periods_during_start_up_are_counted_apart():
    realtime = make(BlockDelay(slow_blocks={0}, sleep=10 * PERIOD / RATE), startup=40 * PERIOD)
    realtime.start()
    drive(realtime, ramp(80 * PERIOD) + 1, wait_for_worker=False)
    realtime.close()
    assert realtime.counters.startup_late_blocks > 0
    assert realtime.counters.late_blocks == 0


def test_a_slow_block_is_counted_and_neither_drops_input_nor_drifts():
    processor = BlockDelay(slow_blocks={4}, sleep=20 * PERIOD / RATE)
    realtime = make(processor)
    realtime.start()
    signal = ramp(80 * PERIOD) + 1
    played = drive(realtime, signal, wait_for_worker=False)
    time.sleep(0.05)
    realtime.close()
    assert realtime.counters.late_blocks > 0
    assert realtime.counters.dropped_frames == 0
    assert processor.seen >= len(signal) - PERIOD  # every captured sample reached the model in order
    latency = realtime.latency
    tail = slice(len(signal) - 10 * PERIOD, len(signal))  # long after the slow block: back in time
    np.testing.assert_array_equal(played[tail], signal[tail.start - latency : tail.stop - latency])


def test_a_late_period_plays_the_dry_input_at_the_same_latency():
    realtime = make(BlockDelay(gain=0.0, slow_blocks={2}, sleep=30 * PERIOD / RATE))
    realtime.start()
    signal = ramp(60 * PERIOD) + 1
    played = drive(realtime, signal, wait_for_worker=False)
    realtime.close()
    late = np.flatnonzero(played[:, 0])  # the model's output is silent (gain 0): only the fallback sounds
    assert len(late) > 0
    aligned = late[(late >= realtime.latency) & (played[late, 0] == signal[late - realtime.latency, 0])]
    assert len(aligned) > len(late) // 2  # away from the fades, the dry signal sits exactly at the latency


def test_silence_fallback_plays_nothing():
    realtime = make(BlockDelay(gain=0.0, slow_blocks={2}, sleep=30 * PERIOD / RATE), fallback="silence")
    realtime.start()
    played = drive(realtime, ramp(40 * PERIOD) + 1, wait_for_worker=False)
    realtime.close()
    assert realtime.counters.late_blocks > 0
    assert not played.any()


def test_a_period_longer_than_the_rings_allow_plays_silence_and_is_counted():
    realtime = make(BlockDelay())
    out = np.ones(((1 << 14) // 4 + 1, 1), dtype=np.float32)
    realtime.callback(None, out)
    realtime.close()
    assert realtime.counters.callback_errors == 1
    assert realtime.played == len(out)  # the timeline moves on
    assert not out.any()


def test_the_test_hook_refuses_a_period_of_the_wrong_shape():
    realtime = make(BlockDelay())
    with pytest.raises(ValueError, match="float32 \\[frames, 1\\]"):
        realtime.callback(np.zeros((PERIOD, 3), dtype=np.float32), np.zeros((PERIOD, 1), dtype=np.float32))
    realtime.close()


class Failing(BlockDelay):
    def push(self, x):
        raise RuntimeError("boom")


def test_a_failing_model_plays_silence_and_keeps_the_stream_running():
    realtime = make(Failing())
    realtime.start()
    played = drive(realtime, np.ones((20 * PERIOD, 1), dtype=np.float32), wait_for_worker=True)
    realtime.close()
    assert realtime.counters.model_errors > 0
    assert realtime.counters.late_blocks == 0
    assert not played.any()


def test_xruns_are_counted():
    realtime = make(BlockDelay())
    realtime.callback(None, np.zeros((PERIOD, 1), dtype=np.float32), xrun=True)
    realtime.close()
    assert realtime.counters.xruns == 1


def test_swap_crossfades_to_the_new_processor_without_a_late_block():
    realtime = make(BlockDelay(gain=1.0, ramp=False))
    realtime.start()
    signal = np.ones((60 * PERIOD, 1), dtype=np.float32)
    played = np.zeros_like(signal)
    half = 30 * PERIOD
    played[:half] = drive(realtime, signal[:half], wait_for_worker=True)
    realtime.swap(BlockDelay(latency=2 * BLOCK, gain=2.0, ramp=False), crossfade=PERIOD)
    rest = drive(realtime, signal[half:], wait_for_worker=True)
    realtime.close()
    assert realtime.counters.late_blocks == 0
    assert not realtime.swapping
    assert realtime.latency == 2 * BLOCK + 1  # the processor's 2 * BLOCK less the push wait, plus a block
    # The new stream starts at the block the worker is filling (at most BLOCK before `half`) and sounds
    # its latency later: until then the old model plays alone.
    np.testing.assert_array_equal(rest[: BLOCK + 1], 1.0)
    np.testing.assert_array_equal(rest[-PERIOD:], 2.0)
    assert np.all(np.diff(rest[:, 0]) >= 0) and np.max(np.diff(rest[:, 0])) < 0.1  # a fade, not a step


def test_a_ring_shorter_than_the_latency_is_refused():
    config = RealtimeConfig(sample_rate=RATE, channels=1, period=PERIOD, block=BLOCK, margin=PERIOD, ring_frames=512)
    with pytest.raises(ConfigError, match="too short"):
        Realtime(BlockDelay(), config)


def test_swap_to_a_shorter_latency_fades_at_once_and_then_plays_the_new_latency():
    realtime = make(BlockDelay(latency=3 * BLOCK, gain=1.0, ramp=False))
    realtime.start()
    signal = ramp(80 * PERIOD) + 1
    half = 40 * PERIOD
    first = drive(realtime, signal[:half], wait_for_worker=True)
    realtime.swap(BlockDelay(latency=BLOCK - 1, gain=2.0, ramp=False), crossfade=PERIOD)
    rest = drive(realtime, signal[half:], wait_for_worker=True)
    realtime.close()
    played = np.concatenate([first, rest])
    assert realtime.counters.late_blocks == 0
    assert not realtime.swapping
    latency = realtime.latency
    assert latency == BLOCK
    tail = slice(len(signal) - 4 * PERIOD, len(signal))
    np.testing.assert_array_equal(played[tail], 2.0 * signal[tail.start - latency : tail.stop - latency])
