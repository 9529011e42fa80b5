"""`ravelive train-prior MODEL LATENTS --out PRIOR`: the prior trained on a latent corpus, teacher-forced NLL.

    train_prior("rave_v2.ts", "latents/", "runs/piano-prior", ["tiny"], on_step=print)

The loop, its checkpoints, resume and torchrun are corpus_training's (the
conventions of `ravelive train`, as for `train-diffusion`). Each step: a
batch of normalised sequences, each frame predicted from the true frames
before it, and the mean Gaussian negative log-likelihood (prior.Prior.nll,
nats per frame and dimension). MODEL is the model the prior plays for: the
corpus must have been encoded by it (`LatentCorpus.check_encoder`: another
latent size, ratio or rate is refused, another file of that shape warned);
the run keeps the corpus's record of it, so export knows whose `decode` its
frames feed.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ravelive.generation.corpus_training import CorpusObjective, CorpusResult, train_on_corpus
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.prior import Prior
from ravelive.generation.prior_config import PRIOR_TABLE, PriorConfig
from ravelive.models.nn_model import NNModel
from ravelive.training.checkpoint import CheckpointKind
from ravelive.training.loop import StepReport

PRIOR = CheckpointKind("ravelive-prior-checkpoint", PriorConfig, "ravelive train-prior MODEL LATENTS")


def _nll(network: nn.Module, z: torch.Tensor) -> torch.Tensor:
    # through forward (not Prior.nll), so a DistributedDataParallel wrapper sees the call and syncs gradients
    mean, log_std = network(z)
    return Prior.gaussian_nll(z, mean, log_std)


PRIOR_OBJECTIVE = CorpusObjective(PRIOR, PRIOR_TABLE, "nll", Prior, _nll)


def train_prior(
    model: str | Path,
    latents: str | Path,
    run: str | Path,
    names: Sequence[str] = (),
    settings: Sequence[str] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> CorpusResult:
    """Train a prior for `model` (a .ts file) on the corpus `latents` it encoded into the run folder `run`;
    `on_step` runs on rank 0 after each step."""
    LatentCorpus.open(latents).check_encoder(NNModel.load(model))
    return train_on_corpus(latents, run, PRIOR_OBJECTIVE, names, settings, resume=resume, on_step=on_step)
