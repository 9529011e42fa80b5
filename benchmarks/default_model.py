"""Compute per block of the bundled default model against the untrained autoencoder it replaced.

    .venv/bin/python benchmarks/default_model.py [--model M.ts] [--rounds 7] [--blocks 512,2048,8192]

The test suite serves the bundled model in many tests on a shared 2-core
machine, so its cost per block must stay near the old default's: the
untrained StreamingAutoencoder of `AutoencoderConfig()` (48 kHz, ratio 512,
8 latents, 32 channels, ~84 k parameters), rebuilt here from its seed. Both
run `forward` streamed on the same noise blocks, one torch thread, denormals
flushed, gradients off. The machine is shared, so the two alternate in
rounds (they see the same load) and time is this process's CPU time; each
round gives a ratio new / old per block size, and the median is printed.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel

CALLS = 200  # forward calls timed per model, block size and round
WARMUP = 10  # untimed calls first (TorchScript optimises on the first calls)


def cpu_seconds_per_block(model: NNModel, x: torch.Tensor) -> float:
    for _ in range(WARMUP):
        model("forward", x)
    start = time.process_time()
    for _ in range(CALLS):
        model("forward", x)
    return (time.process_time() - start) / CALLS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model to compare (default: bundled)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (the median ratio is printed)")
    parser.add_argument("--blocks", default="512,2048,8192", help="block sizes in samples, comma-separated")
    args = parser.parse_args()
    blocks = [int(block) for block in args.blocks.split(",")]
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)

    with tempfile.TemporaryDirectory() as scratch:
        old = NNModel.load(export_autoencoder(AutoencoderConfig(), Path(scratch) / "old-default.ts", seed=0))
    new = NNModel.load(args.model)
    rate = new.sample_rate
    print(f"old: untrained StreamingAutoencoder, {sum(p.numel() for p in old.module.parameters())} parameters")
    print(f"new: {args.model.name}, {sum(p.numel() for p in new.module.parameters())} parameters, "
          f"{new.metadata['architecture']}")
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for block in blocks:
            x = 0.1 * torch.randn(1, 1, block, generator=generator)
            times = {"old": [], "new": []}
            for _ in range(args.rounds):
                for name, model in (("old", old), ("new", new)):
                    times[name].append(cpu_seconds_per_block(model, x))
            ratio = statistics.median(n / o for n, o in zip(times["new"], times["old"]))
            old_us, new_us = (1e6 * statistics.median(times[name]) for name in ("old", "new"))
            print(f"block {block:5d}: old {old_us:8.1f} us  new {new_us:8.1f} us  per block "
                  f"(realtime factor {new_us / 1e6 / (block / rate):.4f})  new / old {ratio:.2f}")


if __name__ == "__main__":
    main()
