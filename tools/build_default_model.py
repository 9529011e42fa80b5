#!/usr/bin/env python3
"""Rebuild ravelive/models/default.ts (deterministic) and report its size and realtime factor.

    .venv/bin/python tools/build_default_model.py            # rebuild the bundled file
    .venv/bin/python tools/build_default_model.py --out x.ts --no-bench

The realtime factor is compute time / audio time for `forward`, streaming on
one thread (a Raspberry Pi core runs the same code several times slower).
"""

import argparse
import logging
import time
from pathlib import Path

import torch

from ravelive.models.default import DEFAULT_MODEL_PATH, build_default_model
from ravelive.models.nn_model import NNModel

BENCH_SECONDS = 10.0  # audio streamed per block size
BENCH_BLOCKS = (512, 2048, 8192)  # model blocks (samples) to time


def realtime_factor(model: NNModel, block: int, seconds: float) -> float:
    """Seconds of compute per second of audio for `forward` streamed in blocks of `block`."""
    rate = model.sample_rate or 48000
    calls = max(1, round(seconds * rate / block))
    x = 0.5 * torch.randn(1, 1, block)
    with torch.inference_mode():
        for _ in range(10):  # warm TorchScript up before timing
            model("forward", x)
        start = time.perf_counter()
        for _ in range(calls):
            model("forward", x)
        elapsed = time.perf_counter() - start
    return elapsed / (calls * block / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="where to write the model")
    parser.add_argument("--no-bench", action="store_true", help="skip the realtime-factor measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    path = build_default_model(args.out)
    model = NNModel.load(path)
    parameters = sum(p.numel() for p in model.module.parameters())
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, {parameters} parameters")
    for name, method in model.metadata["methods"].items():
        print(f"  {name:8s} params {method['params']}  delay {method['delay']} samples  block multiple {method['block_multiple']}")
    if not args.no_bench:
        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        for block in BENCH_BLOCKS:
            model.module.reset()
            print(f"  realtime factor, 1 thread, block {block}: {realtime_factor(model, block, BENCH_SECONDS):.4f}")


if __name__ == "__main__":
    main()
