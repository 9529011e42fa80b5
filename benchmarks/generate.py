"""Latent diffusion generation speed: audio seconds generated per wall second, against real time.

    .venv/bin/python benchmarks/generate.py [--steps 20 100] [--threads 1] [--sampler dpm] [--device cpu]

What is measured. One window of RAVE v2-shaped latents (128 dims, our v2
preset's `latent_dims`; RAVE-Latent-Diffusion sizes its UNet's input to the
model's latent size, whatever it is) of 2048 frames (RAVE-LD's context:
2048 x 2048 samples = 95.1 s at 44.1 kHz), sampled from noise by
`sampling.sample` at each step count, for two denoisers:
- `tiny`: the tests' preset (three levels, 0.1 M parameters at 128 dims);
- `raveld`: RAVE-Latent-Diffusion's UNet (nine levels, attention at the
  last four, 203 M parameters at 128 dims), the default of train-diffusion.
Untrained weights cost what trained ones do. The decode through the
autoencoder is not included: it is the model's cost, which `ravelive bench`
measures (RAVE v2 decodes far faster than real time).

The ratio printed is audio seconds per wall second: above 1 is faster than
real time (a 95 s window takes 95 / ratio seconds). The baseline is real
time itself (1.0), measured in the same run as wall time of the same loop.
"""

import argparse
import time

import torch

from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_config import build_diffusion_config
from ravelive.generation.sampling import SAMPLERS, sample

DIMS = 128  # RAVE v2's latent size (our v2 preset)
FRAMES = 2048  # RAVE-Latent-Diffusion's context
RATIO = 2048  # RAVE v2: audio samples per latent frame
SAMPLE_RATE = 44100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: 1)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="dpm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["tiny", "raveld"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    audio_seconds = FRAMES * RATIO / SAMPLE_RATE
    print(f"one window: {DIMS} latents x {FRAMES} frames = {audio_seconds:.1f} s of audio at {SAMPLE_RATE} Hz, "
          f"sampler {args.sampler}, {args.threads} thread(s), {device}")
    for preset in args.presets:
        torch.manual_seed(0)
        denoiser = Denoiser(DIMS, build_diffusion_config([preset])).to(device).eval()
        parameters = sum(p.numel() for p in denoiser.parameters())
        noise = torch.randn(1, DIMS, FRAMES, device=device)
        sample(denoiser, noise, 2, args.sampler)  # warm-up: first-call allocations and kernel choices
        for steps in args.steps:
            start = time.perf_counter()
            sample(denoiser, noise, steps, args.sampler)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            print(f"{preset:>7} ({parameters / 1e6:6.1f} M params) {steps:>4} steps: {wall:8.2f} s wall, "
                  f"{audio_seconds / wall:8.1f} x real time")


if __name__ == "__main__":
    main()
