"""Generation speed: diffusion's and the prior's audio seconds per wall second, against real time.

    .venv/bin/python benchmarks/generate.py [--steps 20 100] [--sampler dpm] [--presets tiny raveld]
                                            [--prior-frames 1 4] [--prior-seconds 60] [--prior-presets default tiny]
                                            [--threads 1] [--device cpu]

Both for RAVE v2-shaped latents: 128 dims (our v2 preset's `latent_dims`),
ratio 2048 at 44.1 kHz (21.5 frames per second). Untrained weights cost
what trained ones do. The decode through the autoencoder is not included:
it is the model's cost, which `ravelive bench` measures (RAVE v2 decodes far
faster than real time).

Latent diffusion (`generate-latents`). One window of 2048 frames
(RAVE-Latent-Diffusion's context: 2048 x 2048 samples = 95.1 s), sampled
from noise by `sampling.sample` at each step count, for two denoisers:
- `tiny`: the tests' preset (three levels, 0.1 M parameters at 128 dims);
- `raveld`: RAVE-Latent-Diffusion's UNet (nine levels, attention at the
  last four, 203 M parameters at 128 dims), the default of train-diffusion.
RAVE-LD sizes its UNet's input to the model's latent size, whatever it is.

The prior (`serve --prior`, `[nn~ prior.ts prior]`). The exported module as
nn~ and serve run it: `PriorModule` (ravelive/generation/prior_export.py)
scripted with TorchScript, method `prior` called on consecutive blocks of
`--prior-frames` latent frames at temperature 1, for the two presets of
train-prior: `default` (2 x 512 GRU) and `tiny` (1 x 64). One frame per call
is serve's block at ratio 2048; nn~ calls it once per buffer. `--device`
does not apply: it plays on the CPU, as nn~ runs it.

The ratio printed is audio seconds per wall second: above 1 is faster than
real time (a 95 s window takes 95 / ratio seconds). The baseline is real
time itself (1.0), measured in the same run as wall time of the same loop.
"""

import argparse
import time

import torch

from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_config import build_diffusion_config
from ravelive.generation.latents import ModelIdentity
from ravelive.generation.prior import Prior
from ravelive.generation.prior_config import build_prior_config
from ravelive.generation.prior_export import PriorModule
from ravelive.generation.sampling import SAMPLERS, sample
from ravelive.models.torchscript import script

DIMS = 128  # RAVE v2's latent size (our v2 preset)
FRAMES = 2048  # RAVE-Latent-Diffusion's context
RATIO = 2048  # RAVE v2: audio samples per latent frame
SAMPLE_RATE = 44100


def diffusion_speed(presets: list[str], step_counts: list[int], sampler: str, device: torch.device) -> None:
    if not presets:
        return
    audio_seconds = FRAMES * RATIO / SAMPLE_RATE
    print(f"diffusion, one window: {DIMS} latents x {FRAMES} frames = {audio_seconds:.1f} s of audio, "
          f"sampler {sampler}, {device}")
    for preset in presets:
        torch.manual_seed(0)
        denoiser = Denoiser(DIMS, build_diffusion_config([preset])).to(device).eval()
        parameters = sum(p.numel() for p in denoiser.parameters())
        noise = torch.randn(1, DIMS, FRAMES, device=device)
        sample(denoiser, noise, 2, sampler)  # warm-up: first-call allocations and kernel choices
        for steps in step_counts:
            start = time.perf_counter()
            sample(denoiser, noise, steps, sampler)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            print(f"  {preset:>7} ({parameters / 1e6:6.2f} M parameters), {steps:>3} steps: {wall:8.2f} s wall, "
                  f"{audio_seconds / wall:8.1f}x real time (baseline 1.0)")


def prior_speed(presets: list[str], frames_per_call: list[int], seconds: float) -> None:
    if not presets:
        return
    identity = ModelIdentity("v2-shaped", "", SAMPLE_RATE, RATIO, DIMS)
    total = round(seconds * SAMPLE_RATE / RATIO)
    print(f"prior, streamed: {total} frames ({total * RATIO / SAMPLE_RATE:.1f} s) per measurement, temperature 1, "
          f"cpu")
    for preset in presets:
        torch.manual_seed(0)
        prior = Prior(DIMS, build_prior_config([preset]))
        parameters = sum(p.numel() for p in prior.parameters())
        module = script(PriorModule(prior, identity, [0.0] * DIMS, [1.0] * DIMS).eval())
        for frames in frames_per_call:
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
            print(f"  {preset:>7} ({parameters / 1e6:6.2f} M parameters), {frames} frame(s) per call: "
                  f"{1e3 * wall / (calls * frames):.2f} ms per frame, {audio / wall:8.1f}x real time (baseline 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 100], help="diffusion sampler steps")
    parser.add_argument("--sampler", choices=SAMPLERS, default="dpm")
    parser.add_argument("--presets", nargs="*", default=["tiny", "raveld"], help="denoisers (none: skip diffusion)")
    parser.add_argument("--prior-frames", type=int, nargs="+", default=[1, 4], help="latent frames per prior call")
    parser.add_argument("--prior-seconds", type=float, default=60.0, help="audio seconds streamed per prior figure")
    parser.add_argument("--prior-presets", nargs="*", default=["default", "tiny"], help="priors (none: skip them)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: 1)")
    parser.add_argument("--device", default="cpu", help="where diffusion samples")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{DIMS} latents at ratio {RATIO}, {SAMPLE_RATE} Hz ({SAMPLE_RATE / RATIO:.1f} frames/s), "
          f"{args.threads} thread(s)")
    diffusion_speed(args.presets, args.steps, args.sampler, torch.device(args.device))
    prior_speed(args.prior_presets, args.prior_frames, args.prior_seconds)


if __name__ == "__main__":
    main()
