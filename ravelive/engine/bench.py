"""Realtime factor of a model through StreamEngine at several block sizes (`ravelive bench`).

The realtime factor is compute time / audio duration: below 1 the model
keeps up, and 1 / factor is the headroom. The worst block (its compute time
over its duration) says whether a live stream would have late blocks, which
the mean hides. Each size is warmed up first (TorchScript optimises on the
first calls) and timed through the same engine `serve` uses, at the model's
own rate, with gradients off and denormals flushed.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ravelive.engine.stream import StreamEngine
from ravelive.errors import ConfigError
from ravelive.models.nn_model import NNModel

logger = logging.getLogger(__name__)

FALLBACK_RATE = 48000  # audio duration is counted at this rate when the model names none
WARMUP_BLOCKS = 4  # untimed blocks before each size is measured
SIZES = 4  # default sizes: B, 2B, 4B, 8B from the engine's default block B


@dataclass(frozen=True)
class BenchResult:
    block: int  # model block in samples
    blocks: int  # blocks timed
    seconds_per_block: float  # mean compute time of one block
    realtime_factor: float  # compute time / audio duration
    worst_block: float  # slowest block's compute time / block duration


def parse_blocks(text: str) -> list[int]:
    """"2048,4096" -> [2048, 4096]; ConfigError for anything else."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--blocks {text!r} is not a comma-separated list of sizes; write e.g. --blocks 2048,4096") from None


def default_blocks(model: NNModel, method: str | None = None) -> list[int]:
    """B, 2B, 4B ... from the engine's default block B for the method (latent path included)."""
    default = StreamEngine(model, method).block
    return [default << power for power in range(SIZES)]


def benchmark(
    model: NNModel,
    method: str | None = None,
    blocks: Sequence[int] | None = None,
    seconds: float = 5.0,
    threads: int | None = None,
) -> list[BenchResult]:
    """Time `seconds` of noise per block size; `threads` fixes torch's intra-op thread count."""
    if seconds <= 0:
        raise ConfigError(f"bench duration {seconds} s must be positive; try 5")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads {threads} must be at least 1; try 1 or the number of cores")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        return [_time_block(model, method, block, seconds) for block in (blocks or default_blocks(model, method))]
    finally:
        torch.set_num_threads(previous_threads)


def _time_block(model: NNModel, method: str | None, block: int, seconds: float) -> BenchResult:
    engine = StreamEngine(model, method, block)
    rate = model.sample_rate or FALLBACK_RATE
    count = max(1, round(seconds * rate / block))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((WARMUP_BLOCKS + count, engine.channels, block))).astype(np.float32)
    for warmup in audio[:WARMUP_BLOCKS]:
        engine.push(warmup)
    times = np.empty(count)
    for index, chunk in enumerate(audio[WARMUP_BLOCKS:]):
        start = time.perf_counter()
        engine.push(chunk)
        times[index] = time.perf_counter() - start
    duration = block / rate
    result = BenchResult(block, count, float(times.mean()), float(times.mean() / duration), float(times.max() / duration))
    logger.info("bench %s block %d: realtime factor %.3f, worst %.3f", model.path.name, block,
                result.realtime_factor, result.worst_block)
    return result
