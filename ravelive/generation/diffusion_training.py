"""`ravelive train-diffusion LATENTS --out RUN`: the denoiser trained on a latent corpus, v-objective.

    train_diffusion("latents/", "runs/piano-ld", ["tiny"], on_step=print)

The loop, its checkpoints, resume and torchrun are corpus_training's (the
conventions of `ravelive train`). Each step: latents x0 from the corpus, a
time step t drawn uniformly from the schedule's 1000 and Gaussian noise per
sequence, the noisy latents at t, and the mean squared error between the
denoiser's output and the velocity (sampling.TrainingSchedule).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ravelive.generation.corpus_training import (
    CorpusObjective,
    CorpusResult,
    train_on_corpus,
)
from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_config import DIFFUSION_TABLE, DiffusionConfig
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.sampling import TRAIN_TIMESTEPS, TrainingSchedule
from ravelive.training.checkpoint import CheckpointKind
from ravelive.training.loop import StepReport

DIFFUSION = CheckpointKind("ravelive-diffusion-checkpoint", DiffusionConfig, "ravelive train-diffusion LATENTS")
_SCHEDULE = TrainingSchedule()


def _v_loss(network: nn.Module, x0: torch.Tensor) -> torch.Tensor:
    """Noise a batch at random time steps; the error of its predicted velocity."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(x0),), device=x0.device)
    return F.mse_loss(network(_SCHEDULE.noisy(x0, noise, t), t), _SCHEDULE.training_target(x0, noise, t))


def _check_length(config: DiffusionConfig, corpus: LatentCorpus) -> None:
    config.check_length(corpus.length)


DIFFUSION_OBJECTIVE = CorpusObjective(DIFFUSION, DIFFUSION_TABLE, "v_mse", Denoiser, _v_loss, _check_length)


def train_diffusion(
    latents: str | Path,
    run: str | Path,
    names: Sequence[str] = (),
    settings: Sequence[str] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> CorpusResult:
    """Train a denoiser on the corpus `latents` into the run folder `run`; `on_step` runs on rank 0 after each step."""
    return train_on_corpus(latents, run, DIFFUSION_OBJECTIVE, names, settings, resume=resume, on_step=on_step)
