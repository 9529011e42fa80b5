"""The warm-up's p99, which sets --latency-margin auto: one stall of a busy machine must not set it."""

import logging

import numpy as np
import pytest

from ravelive.engine.warmup import STALL_FACTOR, compute_p99

STEADY = list(np.linspace(0.018, 0.024, 40))  # 40 blocks of 18-24 ms, as a 33 M model on one core


def test_steady_blocks_give_their_p99():
    assert compute_p99(STEADY) == pytest.approx(np.percentile(STEADY, 99))


def test_an_isolated_stall_is_left_out_and_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="ravelive.engine.warmup"):
        p99 = compute_p99(STEADY + [0.37])  # the block seen waiting for a CPU while tests ran beside serve
    assert p99 == pytest.approx(np.percentile(STEADY, 99))
    assert "1 of 41 blocks stalled (slowest 370.0 ms" in caplog.text


def test_frequent_slow_blocks_count_they_are_how_the_machine_runs():
    times = STEADY + [STALL_FACTOR * 0.03] * 6  # 6 of 46: more than one block in ten
    assert compute_p99(times) == pytest.approx(np.percentile(times, 99))
