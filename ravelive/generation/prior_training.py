"""`ravelive train-prior LATENTS --out PRIOR`: the prior trained on a latent corpus, teacher-forced NLL.

    train_prior("latents/", "runs/piano-prior", ["tiny"], on_step=print)

The loop, its checkpoints, resume and torchrun are corpus_training's (the
conventions of `ravelive train`, as for `train-diffusion`). Each step: a
batch of normalised sequences, each frame predicted from the true frames
before it, and the mean Gaussian negative log-likelihood (prior.Prior.nll,
nats per frame and dimension). The LATENTS corpus names its model, so the
run knows which model's `decode` its frames are for.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ravelive.generation.corpus_training import CorpusObjective, CorpusResult, train_on_corpus
from ravelive.generation.prior import Prior
from ravelive.generation.prior_config import PRIOR_TABLE, PriorConfig
from ravelive.training.checkpoint import CheckpointKind
from ravelive.training.loop import StepReport

PRIOR = CheckpointKind("ravelive-prior-checkpoint", PriorConfig, "ravelive train-prior LATENTS")


def _nll(network: nn.Module, z: torch.Tensor) -> torch.Tensor:
    # through forward (not Prior.nll), so a DistributedDataParallel wrapper sees the call and syncs gradients
    mean, log_std = network(z)
    return Prior.gaussian_nll(z, mean, log_std)


PRIOR_OBJECTIVE = CorpusObjective(PRIOR, PRIOR_TABLE, "nll", Prior, _nll)


def train_prior(
    latents: str | Path,
    run: str | Path,
    names: Sequence[str] = (),
    settings: Sequence[str] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> CorpusResult:
    """Train a prior on the corpus `latents` into the run folder `run`; `on_step` runs on rank 0 after each step."""
    return train_on_corpus(latents, run, PRIOR_OBJECTIVE, names, settings, resume=resume, on_step=on_step)
