"""The noise schedule and the samplers of latent diffusion: `diffusers`' schedulers, v-objective, cosine schedule.

Training and sampling share one schedule: 1000 discrete time steps of the
cosine schedule (`squaredcos_cap_v2`, Nichol and Dhariwal's; RAVE-Latent-
Diffusion's VDiffusion is its continuous form), with v-prediction. The
denoiser learns v = alpha * noise - sigma * x0 (`training_target`).

`sample` runs DDIM (deterministic, eta 0) or DPM-Solver++ (second order,
multistep): 20 to 50 steps where RAVE-Latent-Diffusion's sampler needs 100.
Both walk the "trailing" time steps, so the first step starts from the
noisiest one (999) whatever the step count. Optionally the first `known`
frames are held to given latents: at every step they are replaced by those
latents noised to the current time step (inpainting), so the rest of the
window is generated to continue them; the result's own first frames are the
model's, pulled towards the known ones (`windows` crossfades them).
"""

import contextlib
import warnings
from collections.abc import Callable

import torch

from ravelive.errors import ConfigError

TRAIN_TIMESTEPS = 1000
SAMPLERS = ("dpm", "ddim")  # DPM-Solver++ (2M) first: better than DDIM at few steps
_SCHEDULE = {"num_train_timesteps": TRAIN_TIMESTEPS, "beta_schedule": "squaredcos_cap_v2",
             "prediction_type": "v_prediction", "timestep_spacing": "trailing"}


def _scheduler(name: str):
    # only the schedulers: diffusers' pipelines and models (transformers, accelerate) are never imported
    try:
        from diffusers.schedulers import DDIMScheduler, DPMSolverMultistepScheduler
    except ImportError:
        raise ConfigError("latent diffusion needs diffusers, an optional dependency: "
                          "pip install 'ravelive[generation]'") from None

    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r}: expected one of {SAMPLERS}")
    with _numpy_2_quiet():
        if name == "ddim":
            return DDIMScheduler(**_SCHEDULE, clip_sample=False)
        return DPMSolverMultistepScheduler(**_SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)


@contextlib.contextmanager
def _numpy_2_quiet():
    """numpy 2 warns diffusers (0.42) that torch tensors' __array__ lacks a `copy` keyword: harmless, ours to hide."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="__array__ implementation")
        yield


class TrainingSchedule:
    """What a training step draws: noisy latents at random time steps and the velocity the denoiser must predict."""

    def __init__(self) -> None:
        self.scheduler = _scheduler("ddim")

    def noisy(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(x0, noise, t)

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.scheduler.get_velocity(x0, noise, t)


Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (noisy x, time step [1]) -> v


@torch.inference_mode()
def sample(denoise: Denoise, noise: torch.Tensor, steps: int, sampler: str = "dpm",
           known: torch.Tensor | None = None, known_noise: torch.Tensor | None = None) -> torch.Tensor:
    """Latents [batch, dims, frames] from `noise` of that shape in `steps` steps; see the module for `known`.

    `known` [batch, dims, K] holds the first K frames to, `known_noise` (its shape) noises it.
    Deterministic: the same noise gives the same latents.
    """
    scheduler = _scheduler(sampler)
    with _numpy_2_quiet():
        scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        if known is not None:
            x = x.clone()
            x[..., : known.shape[-1]] = scheduler.add_noise(known, known_noise, t[None])
        x = scheduler.step(denoise(x, t[None]), t, x).prev_sample
    return x
