"""Prior playing speed: audio seconds of latents the exported prior streams per wall second, against real time.

    .venv/bin/python benchmarks/prior.py [--frames 1 4] [--seconds 60] [--threads 1]

What is measured. The exported prior as nn~ and serve run it: `PriorModule`
(ravelive/generation/prior_export.py) scripted with TorchScript, method
`prior` called on consecutive blocks of `--frames` latent frames at
temperature 1, for RAVE v2-shaped latents (128 dims, ratio 2048, 44.1 kHz:
21.5 frames per second) and the two presets of train-prior: `default` (2 x
512 GRU) and `tiny` (1 x 64). One frame per call is serve's block at ratio
2048; nn~ calls it once per buffer. Untrained weights cost what trained
ones do. The decode is not included: it is the model's cost (`ravelive
bench`).

The ratio printed is audio seconds per wall second: above 1 is faster than
real time. The baseline is real time itself (1.0), measured in the same run
as wall time of the same loop.
"""

import argparse
import time

import torch

from ravelive.generation.latents import ModelIdentity
from ravelive.generation.prior import Prior
from ravelive.generation.prior_config import build_prior_config
from ravelive.generation.prior_export import PriorModule
from ravelive.models.torchscript import script

DIMS = 128  # RAVE v2's latent size (our v2 preset)
RATIO = 2048  # RAVE v2: audio samples per latent frame
SAMPLE_RATE = 44100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 4], help="latent frames per call")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio seconds streamed per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: 1)")
    parser.add_argument("--presets", nargs="+", default=["default", "tiny"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    identity = ModelIdentity("v2-shaped", "", SAMPLE_RATE, RATIO, DIMS)
    total = round(args.seconds * SAMPLE_RATE / RATIO)
    print(f"{DIMS} latents at ratio {RATIO}, {SAMPLE_RATE} Hz ({SAMPLE_RATE / RATIO:.1f} frames/s), "
          f"{total} frames ({total * RATIO / SAMPLE_RATE:.1f} s) per measurement, {args.threads} thread(s)")
    for preset in args.presets:
        torch.manual_seed(0)
        prior = Prior(DIMS, build_prior_config([preset]))
        parameters = sum(p.numel() for p in prior.parameters())
        module = script(PriorModule(prior, identity, [0.0] * DIMS, [1.0] * DIMS).eval())
        for frames in args.frames:
            temperature = torch.ones(1, 1, frames)
            calls = max(1, total // frames)
            with torch.inference_mode():
                for _ in range(3):  # warm-up: TorchScript optimises on the first calls
                    module.prior(temperature)
                module.reset()
                start = time.perf_counter()
                for _ in range(calls):
                    module.prior(temperature)
                wall = time.perf_counter() - start
            audio = calls * frames * RATIO / SAMPLE_RATE
            print(f"{preset:>8} ({parameters / 1e6:.2f} M parameters), {frames} frame(s) per call: "
                  f"{1e6 * wall / (calls * frames):.0f} us per frame, {audio / wall:.0f}x real time "
                  f"(baseline 1.0)")


if __name__ == "__main__":
    main()
