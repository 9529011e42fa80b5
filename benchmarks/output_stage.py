"""The output stage's cost per model block: DC blocker and true-peak limiter, quiet and loud input.

    .venv/bin/python benchmarks/output_stage.py [--block 2048] [--rate 48000] [--blocks 300]

Quiet input (peaks below what the limiter's detector can miss) costs a few
numpy calls; loud input (the detector and the gain curve on every block)
is what a model playing near full scale pays. The loud figure is printed
against the limiter's two hot spots as first written, measured in the same
run on the same blocks: the lookahead minimum as a strided minimum over
every window, and the interval peak as a maximum over the innermost,
3-long axis of the oversampled points (`TruePeakLimiter` now uses
`running_min`, O(n), and points laid out [phases, n]). Each figure is also
given as a share of the block's duration.
"""

import argparse
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ravelive.dsp import limiter as limiter_module
from ravelive.dsp.dc_blocker import DCBlocker
from ravelive.dsp.limiter import HALF_TAPS, TruePeakLimiter


class FirstWrittenLimiter(TruePeakLimiter):
    """The baseline: the same limiter with its two hot spots as first written (identical output)."""

    def _lookahead_min(self, required: np.ndarray) -> np.ndarray:
        if required.min() >= 1.0:
            return np.ones(required.shape[0] - self.lookahead + 1)
        return sliding_window_view(required, self.lookahead).min(axis=1)

    def _required(self, xs: np.ndarray) -> np.ndarray:
        k = HALF_TAPS
        first, last = self._history - self.delay, xs.shape[1] - k
        window = sliding_window_view(xs[:, first - k : last + k], 2 * k, axis=1)
        between = np.abs(window @ self._taps.T).max(axis=2)
        samples = np.abs(xs[:, first - 1 : last + 1])
        interval = np.maximum(np.maximum(samples[:, :-1], samples[:, 1:]), between)
        peak = np.maximum(interval[:, :-1], interval[:, 1:]).max(axis=0) * limiter_module.DETECTOR_HEADROOM
        with np.errstate(divide="ignore"):
            return np.minimum(1.0, self.ceiling / peak)


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
        ours = seconds_per_block(TruePeakLimiter(1, args.rate), blocks)
        first = seconds_per_block(FirstWrittenLimiter(1, args.rate), blocks)
        same = np.array_equal(TruePeakLimiter(1, args.rate).process(audio),
                              FirstWrittenLimiter(1, args.rate).process(audio))
        print(f"{name:18s} DC blocker {1e6 * dc:6.0f} us, limiter {1e6 * ours:6.0f} us "
              f"({100 * (dc + ours) / duration:.2f}% of the block); first written {1e6 * first:6.0f} us: "
              f"{first / ours:.2f}x ours{'' if same else ' (OUTPUT DIFFERS)'}")


if __name__ == "__main__":
    main()
