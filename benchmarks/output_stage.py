"""The output safety's cost per model block: the DC blocker and the true-peak limiter (both C), quiet and loud.

    .venv/bin/python benchmarks/output_stage.py [--block 2048] [--rate 48000] [--blocks 300]

Both run in the audio callback, one sample at a time in C
(engine/native/rtdcblock.c, rtlimiter.c); here on numpy blocks through the
same code. The limiter's detector runs on every sample, the
lookahead minimum only while some sample of the last lookahead needs
limiting, so loud input costs more than quiet. Each figure is printed as a share of the block's
duration (the share of one core it takes live), and the limiter against the
DC blocker measured in the same run on the same blocks (the noise of a
shared machine moves both).
"""

import argparse
import time

import numpy as np

from ravelive.dsp.dc_blocker import DCBlocker
from ravelive.dsp.limiter import TruePeakLimiter


def seconds_per_block(stage, blocks: list[np.ndarray]) -> float:
    for block in blocks[:10]:  # warm: allocations, the release state
        stage.process(block)
    started = time.perf_counter()
    for block in blocks:
        stage.process(block)
    return (time.perf_counter() - started) / len(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=2048)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--blocks", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    duration = args.block / args.rate
    print(f"block {args.block} at {args.rate} Hz ({1000 * duration:.1f} ms), mono, {args.blocks} blocks each")
    for name, amplitude in (("quiet (peaks 0.3)", 0.3), ("loud (peaks 0.9)", 0.9), ("over (peaks 2.0)", 2.0)):
        audio = (amplitude * rng.uniform(-1, 1, (1, args.block * args.blocks))).astype(np.float32)
        blocks = np.split(audio, args.blocks, axis=1)
        dc = seconds_per_block(DCBlocker(1, args.rate), blocks)
        limiter = seconds_per_block(TruePeakLimiter(1, args.rate), blocks)
        print(f"{name:18s} DC blocker {1e6 * dc:6.0f} us ({100 * dc / duration:.2f}% of the block), "
              f"limiter {1e6 * limiter:6.0f} us ({100 * limiter / duration:.2f}%): {limiter / dc:.2f}x the DC blocker")


if __name__ == "__main__":
    main()
