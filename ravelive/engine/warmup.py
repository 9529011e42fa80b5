"""Warming a model up before it plays, and the latency margin its warm-up asks for.

The first calls of a TorchScript method are several times slower (graph
optimisation), so a model plays only after a throwaway engine has pushed
silence through it. Those blocks are timed: `--latency-margin auto` is
computed from their p99 (`compute_p99`: stalls of a busy machine aside).
"""

import logging
import math
import time
from collections.abc import Sequence

import numpy as np

from ravelive.engine.realtime import Processor, callback_lookahead, processor_schedule
from ravelive.engine.stream import StreamEngine

log = logging.getLogger(__name__)

AUTO_HEADROOM = 1.5  # auto margin: at least this many times the p99 warm-up compute time (margin_from_compute)
JITTER_SECONDS = 256 / 48000  # ... and the p99 plus this much, or one period if shorter: late wake-ups (5.3 ms)
WARMUP_SECONDS = 1.0  # audio timed through a throwaway engine before the stream starts (at least 8 blocks)
WARMUP_UNTIMED = 4  # first blocks not timed: TorchScript profiles and optimises its first calls
SWAP_REST = 3.0  # a hot swap's warm-up rests this many times each block's compute time (a quarter of a core)
STALL_FACTOR = 4.0  # a warm-up block slower than this many medians waited for the CPU: a stall (compute_p99)
STALL_SHARE = 0.1  # ... unless more than this share of the blocks did: then that is how the machine runs
STALL_SECONDS = 0.004  # ... and a stall is at least a scheduler's time slice; a small model's 0.3 ms is jitter


def warm_up(engine: StreamEngine, period: int, paced: bool) -> list[float]:
    """Push silence through `engine` in periods; return the compute time of each timed model block.

    Blocks come at the stream's pace (a rest after each one), as they will live: a model called once per
    block starts each with cold caches and takes longer than back to back (+10% to +40% measured here),
    and `--latency-margin auto` must see that. `paced` (a hot swap beside the running stream): rest at
    least SWAP_REST times as long as each block took, so the warm-up takes at most a quarter of a core
    from the live worker (half a core was seen to starve a 33 M model's worker on 2 cores under load).

    A block's time is that of the pushes since the last block, up to the one that ran it. A resampled
    stream's model block is not a whole number of periods, so now and then one push runs two blocks:
    each gets half (timed per stream block instead, that push counted as one block of twice the compute,
    and the auto margin of a 44.1 kHz model at 48 kHz came out twice its live p99).
    """
    blocks = WARMUP_UNTIMED + max(8, math.ceil(WARMUP_SECONDS * engine.model_rate / engine.block))
    block_seconds = engine.block / engine.model_rate
    silence = np.zeros((engine.channels, period), dtype=np.float32)
    times: list[float] = []
    spent = 0.0
    while len(times) < blocks:
        before = engine.blocks_run
        started = time.perf_counter()
        engine.push(silence)
        spent += time.perf_counter() - started
        ran = engine.blocks_run - before
        if ran:
            times += [spent / ran] * ran
            time.sleep(max(ran * block_seconds - spent, SWAP_REST * spent if paced else 0.0))
            spent = 0.0
    return times[WARMUP_UNTIMED:blocks]


def compute_p99(times: Sequence[float], block_seconds: float) -> float:
    """The p99 of warm-up compute times, isolated stalls aside.

    A block that took over STALL_FACTOR times the median, and over STALL_SECONDS, did not compute for that
    long: its threads waited for a CPU another process held (seen: one 0.37 s block among 40 of 20 ms, with tests running beside
    serve on 2 cores, which made the auto margin 0.55 s for a run whose p99 then played at 25 ms). With
    12 to 48 timed blocks the p99 is their slowest, so one stall would set the margin, and the latency,
    for the whole session. Stalls are left out while they are isolated (at most STALL_SHARE of the
    blocks); more often than that they are how this machine runs, and they count. Leaving one out is
    logged at info (`-v`), saying whether it outlasted a block (`block_seconds`: live, a late block): as a
    warning it was printed before the one error line of a start-up that then failed (seen on CI, for
    stalls of 4.5-9 ms), and the late blocks it foretells are counted in the stats anyway.
    """
    median = float(np.median(times))
    steady = [t for t in times if t <= max(STALL_FACTOR * median, STALL_SECONDS)]
    stalls = len(times) - len(steady)
    if stalls and stalls <= STALL_SHARE * len(times):
        log.info("warm-up: %d of %d blocks stalled (slowest %.1f ms, median %.1f ms, %s the %.1f ms block): the "
                 "machine was busy; they do not count towards --latency-margin auto", stalls, len(times),
                 1000 * max(times), 1000 * median, "over" if max(times) > block_seconds else "within",
                 1000 * block_seconds)
        return float(np.percentile(steady, 99))
    return float(np.percentile(times, 99))


def margin_from_compute(p99_seconds: float, sample_rate: int, period: int, ceiling: int | None = None) -> int:
    """Auto margin: the p99 compute time plus headroom, in whole periods.

    The worker gets a block when the callback that completes it returns, and the callback `margin / period`
    periods later plays its first sample (`engine.realtime.schedule`): the margin is the compute budget,
    and only whole periods buy any (so `--latency-margin MS` is rounded up to them too). The headroom is
    the larger of AUTO_HEADROOM x p99 (slow blocks of a heavy model) and the scheduling jitter: with a
    budget of one period and a p99 near it, a single late wake-up of the audio or worker thread is a late
    block (seen as 2 late blocks in 10 s on a JACK dummy server with the bundled model, period 256 at
    48 kHz). A wake-up is late by a time, not by a share of the period: the jitter is JITTER_SECONDS, or
    one period where that is shorter (at 64 frames, one period ran the bundled model with no late block),
    so a long period (JACK at 1024 frames) does not buy a second whole period of latency for a light model.

    `ceiling` (`nn_tilde_ceiling`): the largest margin whose latency stays below nn~'s for this model. A
    model heavy enough that 1.5 x p99 passes it, yet whose p99 leaves that jitter of slack under it, gets
    the ceiling: nn~'s own budget runs it, so the auto margin asks no more latency than nn~ would (a 33 M
    model at 80% of a block on one core: 10 periods otherwise, 8 under the ceiling, no late block seen).
    """
    compute = p99_seconds * sample_rate
    jitter = min(period, JITTER_SECONDS * sample_rate)
    frames = max(AUTO_HEADROOM * compute, compute + jitter)
    if ceiling is not None and compute + jitter <= ceiling:
        frames = min(frames, ceiling)
    return math.ceil(frames / period) * period


def auto_margin(p99_seconds: float, engine: StreamEngine, processor: Processor, sample_rate: int, period: int,
                limiter_on: bool) -> int:
    """`--latency-margin auto` for `processor` (around `engine`) behind the callback: margin_from_compute under
    nn~'s ceiling for the engine's block, the alignment the realtime schedule will give it included."""
    _, alignment = processor_schedule(processor, period, 0, callback_lookahead(sample_rate, limiter_on))
    ceiling = nn_tilde_ceiling(engine.block, engine.model_rate, sample_rate, alignment, period)
    return margin_from_compute(p99_seconds, sample_rate, period, ceiling)


def nn_tilde_ceiling(block: int, model_rate: int, sample_rate: int, alignment: int, period: int) -> int:
    """The largest whole-period margin with alignment + margin below nn~'s 2 * block - 64 (at the model's rate)."""
    nn_tilde = math.ceil((2 * block - 64) * sample_rate / model_rate)  # in stream samples
    return (nn_tilde - 1 - alignment) // period * period
