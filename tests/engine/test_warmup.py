"""The warm-up's p99, which sets --latency-margin auto: one stall of a busy machine must not set it."""

import logging

import numpy as np
import pytest

from ravelive.engine import warmup
from ravelive.engine.warmup import STALL_FACTOR, compute_p99

STEADY = list(np.linspace(0.018, 0.024, 40))  # 40 blocks of 18-24 ms, as a 33 M model on one core
BLOCK_SECONDS = 2048 / 48000


def test_steady_blocks_give_their_p99():
    assert compute_p99(STEADY, BLOCK_SECONDS) == pytest.approx(np.percentile(STEADY, 99))


def test_an_isolated_stall_is_left_out_and_logged_at_info_only(caplog):
    with caplog.at_level(logging.INFO, logger="ravelive.engine.warmup"):
        p99 = compute_p99(STEADY + [0.37], BLOCK_SECONDS)  # seen waiting for a CPU while tests ran beside serve
        small = [0.0006] * 172 + [0.0045]  # a small model's 4.5 ms stall (seen on CI), shorter than its block
        short = compute_p99(small, 512 / 48000)
    assert p99 == pytest.approx(np.percentile(STEADY, 99)) and short == pytest.approx(0.0006)
    assert all(record.levelno == logging.INFO for record in caplog.records)  # a start-up prints nothing of it
    assert "1 of 41 blocks stalled (slowest 370.0 ms, median 21.1 ms, over the 42.7 ms block)" in caplog.text
    assert "1 of 173 blocks stalled (slowest 4.5 ms, median 0.6 ms, within the 10.7 ms block)" in caplog.text


def test_frequent_slow_blocks_count_they_are_how_the_machine_runs():
    times = STEADY + [STALL_FACTOR * 0.03] * 6  # 6 of 46: more than one block in ten
    assert compute_p99(times, BLOCK_SECONDS) == pytest.approx(np.percentile(times, 99))


class ResampledEngine:
    """What warm_up sees of a 44.1 kHz model's engine at 48 kHz: blocks of 2048 model samples, periods of 256
    stream samples, so a push runs no block, one, or now and then two; each block costs 10 ms of a fake clock.
    The converter holds back CONVERTER_DELAY model samples (its filter's look-ahead)."""

    channels, block, model_rate, sample_rate = 1, 2048, 44100, 48000
    BLOCK_SECONDS = 0.010
    CONVERTER_DELAY = 100

    def __init__(self, clock: list[float]) -> None:
        self.clock, self.blocks_run, self._filled = clock, 0, -self.CONVERTER_DELAY

    def push(self, x: np.ndarray) -> None:
        self._filled += x.shape[1] * self.model_rate / self.sample_rate
        while self._filled >= self.block:
            self._filled -= self.block
            self.blocks_run += 1
            self.clock[0] += self.BLOCK_SECONDS


def test_each_model_block_is_timed_once_when_a_push_runs_two(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(warmup.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(warmup.time, "sleep", lambda seconds: None)
    engine = ResampledEngine(clock)
    times = warmup.warm_up(engine, 256, paced=False)
    assert engine.blocks_run >= len(times) + warmup.WARMUP_UNTIMED
    assert times == pytest.approx([ResampledEngine.BLOCK_SECONDS] * len(times))  # not 20 ms and 0 ms ones


def test_a_small_models_jitter_is_not_a_stall(caplog):
    times = [0.00002] * 40 + [0.0003] * 3  # an identity model: 20 us blocks, a few of 0.3 ms
    with caplog.at_level(logging.WARNING, logger="ravelive.engine.warmup"):
        assert compute_p99(times, BLOCK_SECONDS) == pytest.approx(np.percentile(times, 99))
    assert not caplog.text  # serve's start-up prints nothing of it
