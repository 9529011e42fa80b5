"""`ravelive generate-latents RUN --model MODEL --out DIR`: unconditional audio from a trained latent diffusion run.

Latents are sampled (sampling.sample) in windows of the training length
(the denoiser's context), denormalised with the corpus statistics the run
saved, decoded by MODEL's `decode` (its streaming delay taken back, so the
wav starts with the first frame: `decode`) and written as float wav. MODEL
must decode the corpus's latent size at its ratio and rate (`check_model`).

Longer than one window, without a seam: window k+1 starts `overlap` frames
(a quarter window) before window k ends. While it is sampled, its first
`overlap` frames are held to window k's last ones (inpainting: replaced at
every step by them noised to that step), so the denoiser generates the rest
as their continuation; then the overlap is crossfaded (raised cosine) from
window k's frames to window k+1's own, which the inpainting has pulled
close to them. Inpainting alone would leave the join to the sampler
(its last frames may still jump); a crossfade alone would blend two
unrelated sequences through a blur. Together, every frame-to-frame step at
an edge is a blend of steps inside the two windows, plus the small gap the
inpainting left times the ramp's slope.

Everything random comes from the seed: window k's initial noise and the
noise of its inpainted frames are the seed generator's k-th draws, so a
seed always gives the same audio. `--temperature T` scales the initial
noise (below 1: closer to the corpus's average, above 1: wilder).
`--slerp A B` walks from seed A's noises to seed B's along the sphere
(spherical interpolation keeps the noise's norm, which a straight line
between two independent Gaussians would shrink by up to 1/sqrt(2)).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravelive.errors import ConfigError
from ravelive.generation.corpus_training import corpus_of_run
from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_training import DIFFUSION
from ravelive.generation.sampling import SAMPLERS, sample
from ravelive.models.nn_model import NNModel
from ravelive.training.checkpoint import load_checkpoint

DECODE_FRAMES = 256  # latent frames per decode call: memory stays bounded; streaming exports decode chunks seamlessly


@dataclass(frozen=True)
class GenerationSettings:
    seconds: float | None = None  # None: one window, the training context
    seed: int = 0
    steps: int = 50  # sampler steps per window
    temperature: float = 1.0  # scale of the initial noise
    sampler: str = "dpm"  # "dpm" (DPM-Solver++ 2M) or "ddim"

    def __post_init__(self) -> None:
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError(f"--seconds {self.seconds}: expected a duration above 0")
        if self.steps < 1:
            raise ConfigError(f"--steps {self.steps}: expected at least 1 (20 to 50 suit both samplers)")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature {self.temperature}: expected a number above 0 (1: as trained)")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--sampler {self.sampler!r}: expected one of {', '.join(SAMPLERS)}")


@dataclass(frozen=True)
class WindowNoise:
    """What window k draws from its seed: its initial noise [1, dims, length] and its inpainting noise."""

    initial: torch.Tensor
    inpainting: torch.Tensor  # [1, dims, overlap]


def overlap_of(length: int) -> int:
    return length // 4


def window_count(frames: int, length: int) -> int:
    """Windows of `length` frames, each starting `overlap` before the previous one ends, to cover `frames`."""
    return 1 + math.ceil(max(0, frames - length) / (length - overlap_of(length)))


def seed_noises(seed: int, count: int, dims: int, length: int) -> list[WindowNoise]:
    generator = torch.Generator().manual_seed(seed)
    return [WindowNoise(torch.randn(1, dims, length, generator=generator),
                        torch.randn(1, dims, overlap_of(length), generator=generator)) for _ in range(count)]


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """The point `alpha` of the way from a to b along the great circle through them (norm kept)."""
    cosine = (a.flatten() @ b.flatten()) / (a.norm() * b.norm())
    angle = torch.arccos(cosine.clamp(-1.0, 1.0))
    if angle < 1e-6:  # the same direction: the straight line is the arc
        return (1 - alpha) * a + alpha * b
    return (torch.sin((1 - alpha) * angle) * a + torch.sin(alpha * angle) * b) / torch.sin(angle)


def slerp_noises(a: list[WindowNoise], b: list[WindowNoise], alpha: float) -> list[WindowNoise]:
    return [WindowNoise(slerp(x.initial, y.initial, alpha), slerp(x.inpainting, y.inpainting, alpha))
            for x, y in zip(a, b)]


def crossfade_ramp(overlap: int) -> torch.Tensor:
    """Raised cosine from near 0 to near 1 over `overlap` frames: the weight of the new window."""
    return 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)


def generate_sequence(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noises: list[WindowNoise],
                      frames: int, settings: GenerationSettings) -> torch.Tensor:
    """Normalised latents [dims, frames] from one WindowNoise per window (see the module)."""
    length = noises[0].initial.shape[-1]
    overlap = overlap_of(length)
    ramp = crossfade_ramp(overlap)
    out = None
    for noise in noises:
        known = None if out is None else out[..., -overlap:]
        window = sample(denoise, noise.initial * settings.temperature, settings.steps, settings.sampler, known,
                        noise.inpainting)
        if out is None:
            out = window
        else:
            joined = out[..., -overlap:] * (1 - ramp) + window[..., :overlap] * ramp
            out = torch.cat([out[..., :-overlap], joined, window[..., overlap:]], dim=-1)
    return out[0, :, :frames]


def decode(model: NNModel, latents: np.ndarray) -> np.ndarray:
    """Audio [channels, frames * ratio] of latents [dims, frames] through `model`'s decode, chunk by chunk, aligned:
    sample 0 is latent frame 0's, as in the offline decode of the whole sequence.

    A non-causal decode streams its output `delay` samples late (its look-ahead, `NNModel.delay`): those first
    samples are dropped, and enough frames fed past the end for the last frame's audio to come out. They repeat
    the last frame (the piece's own sound, not a jump to the latent origin); the piece's last `delay` samples
    hear them where the offline decode hears its zero padding, so only those may differ from it.
    """
    delay = model.delay("decode")
    samples_per_frame = model.methods["decode"].in_ratio // model.methods["decode"].out_ratio
    padded = np.pad(latents, ((0, 0), (0, -(-delay // samples_per_frame))), mode="edge")
    with torch.inference_mode():
        chunks = [model("decode", torch.from_numpy(np.ascontiguousarray(padded[None, :, start:start + DECODE_FRAMES])))
                  for start in range(0, padded.shape[1], DECODE_FRAMES)]
    return torch.cat(chunks, dim=-1)[0, :, delay : delay + latents.shape[1] * samples_per_frame].numpy()


def generate_latents(run: str | Path, model_path: str | Path, out: str | Path, settings: GenerationSettings,
                     slerp_seeds: tuple[int, int] | None = None, slerp_count: int = 5) -> list[Path]:
    """Generate into folder `out`: `seed_N.wav`, or with `slerp_seeds` `slerp_A_B_I.wav` for I < slerp_count,
    each with its latents beside it (`.npy`, float32 [dims, frames] in the model's scale: `serve --latents-dir`)."""
    checkpoint = load_checkpoint(run, DIFFUSION)
    corpus = corpus_of_run(checkpoint)
    model = NNModel.load(model_path)
    corpus.check_model(model)
    if slerp_seeds is not None and slerp_count < 2:
        raise ConfigError(f"--slerp-count {slerp_count}: expected at least 2 (both ends)")
    denoiser = Denoiser(corpus.model.dims, checkpoint["config"])
    denoiser.load_state_dict(checkpoint["model"])
    denoiser.eval()
    rate, ratio = corpus.model.sample_rate, corpus.model.ratio
    seconds = settings.seconds if settings.seconds is not None else corpus.length * ratio / rate
    frames = math.ceil(seconds * rate / ratio)
    count = window_count(frames, corpus.length)

    def noises(seed: int) -> list[WindowNoise]:
        return seed_noises(seed, count, corpus.model.dims, corpus.length)

    if slerp_seeds is None:
        jobs = [(f"seed_{settings.seed}.wav", noises(settings.seed))]
    else:
        a, b = (noises(seed) for seed in slerp_seeds)
        jobs = [(f"slerp_{slerp_seeds[0]}_{slerp_seeds[1]}_{index}.wav",
                 slerp_noises(a, b, index / (slerp_count - 1))) for index in range(slerp_count)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (name, job_noises) in enumerate(jobs):
        latents = corpus.denormalise(generate_sequence(denoiser, job_noises, frames, settings).numpy())
        if index and not model.reset_state():  # each file decodes from fresh streaming caches
            model = NNModel.load(model_path)
        audio = decode(model, latents.astype(np.float32))[:, : round(seconds * rate)]
        soundfile.write(out / name, audio.T, rate, subtype="FLOAT")
        np.save(out / Path(name).with_suffix(".npy"), latents.astype(np.float32))  # for serve's /ravelive/latent/play
        written.append(out / name)
    return written
