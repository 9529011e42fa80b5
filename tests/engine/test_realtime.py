"""The realtime scheduler against stand-in processors (the real engine is exercised in tests/test_server.py)."""

import ctypes
import ctypes.util
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ravelive.dsp.dc_blocker import DCBlocker
from ravelive.dsp.limiter import CEILING_DBTP, TruePeakLimiter
from ravelive.engine.realtime import Realtime, RealtimeConfig
from ravelive.errors import ConfigError
from signals import band_limited_noise, true_peak

RATE = 8000
PERIOD = 64
BLOCK = 256


class BlockDelay:
    """Stand-in for the engine behind OutputStage: returns gain * input, whole blocks at a time.

    Output sample j belongs `latency` samples after input j (at least BLOCK - 1: a block's first
    sample waits for its last). It checks that its input is the ramp 0, 1, 2 ... without a gap (the
    model stream never skips), and can sleep inside chosen blocks to play a model that is sometimes
    too slow.
    """

    step = BLOCK

    def __init__(self, latency: int = BLOCK - 1, gain: float = 1.0, slow_blocks=(), sleep: float = 0.0, ramp=True,
                 channels: int = 1):
        self.latency = latency
        self.ramp = ramp
        self.gain = gain
        self.slow_blocks = set(slow_blocks)
        self.sleep = sleep
        self.pending = np.zeros((channels, 0), dtype=np.float32)
        self.seen = 0
        self.expected = None
        self.pushes = []  # frames of each push

    def frames_wanted(self) -> int:
        return self.step  # pushed a whole block at a time

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


def make(processor, margin=PERIOD, fallback="dry", startup=0, limiter=False):
    config = RealtimeConfig(sample_rate=RATE, channels=1, period=PERIOD, block=BLOCK, margin=margin,
                            ring_frames=1 << 14, fallback=fallback, fade=16, startup=startup, limiter=limiter)
    return Realtime(processor, config)


def drive(realtime, signal, wait_for_worker: bool):
    """Run the callback over `signal` period by period; either wait for the worker or keep real time."""
    played = np.zeros_like(signal)
    for start in range(0, len(signal), PERIOD):
        if wait_for_worker:
            deadline = time.monotonic() + 1
            while realtime.ready < realtime.played + realtime.lookahead + PERIOD and time.monotonic() < deadline:
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
    realtime = make(BlockDelay(gain=0.0, slow_blocks={2}, sleep=30 * PERIOD / RATE, ramp=False))
    realtime.start()
    signal = (ramp(60 * PERIOD) + 1) / (120 * PERIOD)  # within full scale: the fallback clips beyond -1 dBFS
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


class Gated:
    """Identity stand-in with any latency and step; it can hold one push until released.

    Output j is input j, returned as soon as the push holding input j + latency - (step - 1) is pushed
    (the Processor rule: its latency includes waiting for a whole push).
    """

    def __init__(self, latency: int, step: int, hold_push: int | None = None):
        self.latency, self.step = latency, step
        self.hold_push = hold_push
        self.entered, self.release = threading.Event(), threading.Event()
        self.history = np.zeros((1, 1 << 16), dtype=np.float32)
        self.pushed = self.emitted = self.pushes = 0

    def frames_wanted(self) -> int:
        return self.step - self.pushed % self.step

    def push(self, x: np.ndarray) -> np.ndarray:
        if self.pushes == self.hold_push:
            self.entered.set()
            self.release.wait(30)
        self.pushes += 1
        self.history[:, self.pushed : self.pushed + x.shape[1]] = x
        self.pushed += x.shape[1]
        known = max(self.emitted, self.pushed - self.latency + self.step - 1)
        out = self.history[:, self.emitted : known].copy()
        self.emitted = known
        return out


def settle(realtime, processor):
    """Wait until the worker has pushed every whole push captured so far and published its output, or holds one."""
    deadline = time.monotonic() + 10
    step = processor.step
    while time.monotonic() < deadline and not processor.entered.is_set():
        pushed = processor.pushed >= realtime.played - realtime.played % step
        if pushed and realtime.ready >= processor.emitted + realtime.latency:  # output j sits at j + latency
            return
        time.sleep(0.0005)


def play_until_held(realtime, processor, period, played):
    """Run periods of a ramp, letting the worker keep up, until it holds its push; returns frames played."""
    n = 0
    while not processor.entered.is_set():
        realtime.callback(ramp(period) + n + 1, played[n : n + period])
        n += period
        settle(realtime, processor)
    return n


@pytest.mark.parametrize("latency, step, period", [
    (2047, 2048, 256),  # a RAVE-sized block at the model's rate
    (511, 512, 256),
    (255, 256, 512),  # a block shorter than the period: two pushes per period
    (1234, 1, 256),  # resampled: every period is pushed, the latency is the engine's and soxr's
])
def test_the_margin_is_exactly_the_compute_budget_and_the_latency_exact(latency, step, period):
    margin = 3 * period
    processor = Gated(latency, step, hold_push=10)  # an even push: for 256/512 the worst-placed one
    config = RealtimeConfig(sample_rate=48000, channels=1, period=period, block=max(step, period), margin=margin,
                            ring_frames=1 << 16, fade=16)
    realtime = Realtime(processor, config)
    assert realtime.margin == margin and realtime.latency - realtime.alignment == margin
    realtime.start()
    played = np.zeros((1 << 16, 1), dtype=np.float32)
    n = play_until_held(realtime, processor, period, played)
    on_time = 0  # periods played while the worker still holds the push completed by the last one
    while not realtime.counters.late_periods:
        realtime.callback(ramp(period) + n + 1, played[n : n + period])
        n += period
        on_time += not realtime.counters.late_periods
    processor.release.set()
    realtime.close()
    assert on_time == margin // period - 1  # the worker had `margin` samples: the next callbacks until then
    good = n - 2 * period  # before the fallback: the input exactly `latency` later
    expected = np.concatenate([np.zeros(realtime.latency), np.arange(1, good + 1)])[:good]
    np.testing.assert_array_equal(played[:good, 0], expected)


@pytest.mark.parametrize("held", [0, 10])  # the stream's first block too: nothing was counted before it
def test_a_late_block_counts_once_and_each_of_its_late_periods_apart(held):
    processor = Gated(BLOCK - 1, BLOCK, hold_push=held)
    realtime = make(processor)  # margin one period: the block's first sample plays in the next period
    realtime.start()
    played = np.zeros((200 * PERIOD, 1), dtype=np.float32)
    n = play_until_held(realtime, processor, PERIOD, played)
    for _ in range(BLOCK // PERIOD):  # the block's whole output is missing: four periods
        realtime.callback(ramp(PERIOD) + n + 1, played[n : n + PERIOD])
        n += PERIOD
    processor.release.set()
    signal = ramp(20 * PERIOD) + n + 1
    drive(realtime, signal, wait_for_worker=True)
    realtime.close()
    counters = realtime.counters
    assert (counters.late_periods, counters.late_blocks) == (BLOCK // PERIOD, 1)


def test_the_c_clock_keeps_playing_the_fallback_while_python_holds_the_gil(tmp_path):
    from ravelive.audio import AudioPath, AudioSettings

    realtime = make(BlockDelay())
    realtime.start()
    audio = AudioPath(AudioSettings(sample_rate=RATE, channels=1, period=PERIOD, use_device=False), realtime.native)
    audio.start()
    time.sleep(0.2)
    before = realtime.counters
    hold_gil = ctypes.PyDLL(ctypes.util.find_library("c")).usleep  # a PyDLL call keeps the GIL
    hold_gil(500_000)
    during = realtime.counters.periods - before.periods  # read right after: the GIL was held all along
    time.sleep(0.1)
    audio.stop()
    realtime.close()
    assert during >= 0.5 * RATE / PERIOD / 2  # the clock went on (a Python clock would have stopped)
    assert realtime.counters.late_periods > 0  # the worker could not run: the fallback played instead
    assert realtime.counters.callback_errors == 0


def test_close_is_safe_twice_before_start_and_after_stop():
    realtime = make(BlockDelay())
    realtime.close()
    realtime.close()
    realtime.stop()
    started = make(BlockDelay())
    started.start()
    started.stop()
    started.close()
    started.close()
    with pytest.raises(RuntimeError, match="closed"):
        started.start()


def test_after_a_swap_the_statistics_describe_the_new_model():
    realtime = make(BlockDelay(ramp=False))
    realtime.start()
    drive(realtime, np.ones((20 * PERIOD, 1), dtype=np.float32), wait_for_worker=True)
    assert realtime.compute.block_frames == BLOCK and realtime.compute.summary()[0] > 0
    realtime.swap(BlockDelay(ramp=False), crossfade=PERIOD, block=2 * BLOCK)
    drive(realtime, np.ones((4 * PERIOD, 1), dtype=np.float32), wait_for_worker=True)  # in the crossfade
    deadline = time.monotonic() + 5  # drive waits only for output the margin already covers: let the worker catch up
    while realtime.compute.block_frames != 2 * BLOCK and time.monotonic() < deadline:
        time.sleep(0.001)
    assert realtime.compute.block_frames == 2 * BLOCK
    drive(realtime, np.ones((20 * PERIOD, 1), dtype=np.float32), wait_for_worker=True)
    realtime.close()
    assert not realtime.swapping
    assert realtime.compute._count < 20 * PERIOD // BLOCK  # only blocks after the crossfade


LOCKED_THREAD = """
import re, threading, time
from ravelive.engine.realtime import lock_memory
def kib(field):
    return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
lock_memory()
locked, before = kib("VmLck"), kib("VmRSS")
go = threading.Event()
thread = threading.Thread(target=go.wait)
thread.start()
time.sleep(0.1)
print(locked, kib("VmRSS") - before)
go.set()
"""


def test_a_thread_started_after_memory_locking_does_not_lock_its_whole_stack():
    # A stack filled in when mapped (mlockall without MCL_ONFAULT) is 8 MiB written under the process's
    # memory-map lock, while the worker waits to allocate: it held a block 30-40 ms at every other start.
    locked, grown = map(int, subprocess.run([sys.executable, "-c", LOCKED_THREAD], capture_output=True, text=True,
                                            check=True, timeout=60).stdout.split())
    if locked == 0:
        pytest.skip("mlockall is not allowed here (RLIMIT_MEMLOCK)")
    assert grown < 4096  # KiB resident: the pages the thread touched, not its 8 MiB stack


@pytest.mark.parametrize("gain", [0.25, 4.0])
def test_the_output_gain_is_heard_in_the_next_period_on_the_model_output_and_on_the_fallback(gain):
    realtime = make(BlockDelay())  # gain_ramp 1: a change is complete at the first sample it reaches
    realtime.start()
    signal = ramp(40 * PERIOD) + 1
    played = drive(realtime, signal[: 20 * PERIOD], wait_for_worker=True)
    realtime.native.set_gain(gain)  # as the server does when gain/out goes to -12 dB or +12 dB
    after = drive(realtime, signal[20 * PERIOD :], wait_for_worker=True)
    realtime.close()
    latency = realtime.latency
    np.testing.assert_array_equal(played[latency:], signal[: 20 * PERIOD - latency])
    np.testing.assert_allclose(after, gain * signal[20 * PERIOD - latency : 40 * PERIOD - latency], rtol=1e-6)
    # no worker at all (never started): past the latency the dry fallback plays, and the gain applies to it too
    for level, expected in ((1.0, 0.5), (0.0, 0.0), (gain, 0.5 * gain)):
        idle = make(BlockDelay())
        idle.native.set_gain(level)
        tail = drive(idle, np.full((4 * BLOCK, 1), 0.5, dtype=np.float32), wait_for_worker=False)[-PERIOD:]
        idle.close()
        np.testing.assert_allclose(tail, expected, rtol=1e-6)


def test_the_midi_gain_table_holds_each_cell_and_what_does_not_fit_is_counted():
    realtime = make(BlockDelay())
    native = realtime.native
    curves = {(channel, 7): tuple(channel / 16 * value / 127 for value in range(128)) for channel in range(16)}
    curves[(0, 9)] = curves[(3, 7)]  # the same curve: one row for both
    curves[(15, 127)] = tuple([0.5] * 128)  # a 17th curve: left to the control thread
    assert native.use_midi_gain(curves) == 1
    table = native.ffi.cast("struct rl_midi_gain *", native._state.midi_gain)
    for (channel, number), gains in curves.items():
        row = table.row[channel][number]
        if (channel, number) == (15, 127):
            assert row == -1
            continue
        assert [table.gain[row][value] for value in range(128)] == [round(g * (1 << 30)) for g in gains]
    assert table.row[0][9] == table.row[3][7] and table.row[1][9] == -1
    first = native._state.midi_gain
    native.use_midi_gain({})  # a new table in use; the old one kept until two periods have run
    assert native._state.midi_gain != first and native._retired_gain_tables[0][0] == table
    drive(realtime, np.zeros((2 * PERIOD, 1), dtype=np.float32), wait_for_worker=False)
    native.use_midi_gain({})  # two periods later: the first one is freed, the second one retired
    retired = native._retired_gain_tables
    assert len(retired) == 1 and retired[0][0] != table
    realtime.close()


def test_the_limiter_holds_a_24_db_boost_under_the_ceiling_from_the_next_period_at_the_same_alignment():
    bare, limited = make(BlockDelay()), make(BlockDelay(ramp=False), limiter=True)
    lookahead = limited.lookahead
    assert lookahead == TruePeakLimiter(1, RATE).delay and limited.latency == bare.latency + lookahead
    bare.close()
    half = 100 * PERIOD
    signal = band_limited_noise(1, 2 * half, cutoff=3000, rms=0.1, rate=RATE).T.copy()
    limited.start()
    before = drive(limited, signal[:half], wait_for_worker=True)
    limited.native.set_gain(10 ** (24 / 20))
    after = drive(limited, signal[half:], wait_for_worker=True)
    limited.close()
    latency = limited.latency
    dc_blocked = DCBlocker(1, RATE).process(signal.T).T  # the callback's DC blocker runs before the gain
    np.testing.assert_allclose(before[latency:], dc_blocked[: half - latency], atol=1e-6)  # unity below the ceiling
    heard = after[lookahead : lookahead + PERIOD]  # the boost enters the limiter with the next period it reads
    unboosted = dc_blocked[half + lookahead - latency :][:PERIOD]  # what those samples play at unity
    assert np.sqrt(np.mean(heard**2)) > 3 * np.sqrt(np.mean(unboosted**2))  # heard at once (+9.5 dB at least) ...
    assert true_peak(after.T) <= np.float32(10 ** (CEILING_DBTP / 20))  # ... and limited


def test_the_dc_blocker_removes_an_offset_from_the_model_and_the_fallback_on_the_audio_channels_only():
    config = RealtimeConfig(sample_rate=RATE, channels=2, period=PERIOD, block=BLOCK, margin=PERIOD,
                            ring_frames=1 << 14, fade=16, audio_channels=1, limiter=True)  # channel 2: a CV jack
    offset = np.full((40 * PERIOD, 2), 0.25, dtype=np.float32)
    for started in (True, False):  # the model's output; never started, the dry fallback
        realtime = Realtime(BlockDelay(ramp=False, channels=2), config)
        if started:
            realtime.start()
        played = drive(realtime, offset, wait_for_worker=started)
        realtime.close()
        tail = played[-PERIOD:]
        assert played[:, 0].max() > 0.2  # the offset's step comes through ...
        assert np.abs(tail[:, 0]).max() < 0.001  # ... and decays on the audio channel
        np.testing.assert_array_equal(tail[:, 1], 0.25)  # the CV jack keeps its DC


def test_the_fallback_plays_no_nan_and_nothing_over_the_ceiling():
    idle = make(BlockDelay())  # never started: past the latency, only the dry fallback plays
    signal = np.tile(np.array([[0.25], [np.nan], [4.0], [-np.inf], [-3.0]], dtype=np.float32), (BLOCK, 1))
    played = drive(idle, signal, wait_for_worker=False)
    idle.close()
    ceiling = np.float32(10 ** (CEILING_DBTP / 20))
    tail = played[-PERIOD:, 0]
    source = signal[len(signal) - PERIOD - idle.latency : len(signal) - idle.latency, 0]
    expected = np.where(np.isfinite(source), np.clip(source, -ceiling, ceiling), 0.0)
    np.testing.assert_allclose(tail, expected, rtol=1e-6)
