"""A trained prior as it plays: the streaming sampler both of its exports embed, and the run it is loaded from.

    trained = TrainedPrior.load("runs/piano-prior")       # the last checkpoint of a `train-prior` run
    stream = trained.stream()                              # temperature [b, 1, m] -> latents [b, dims, m]

`PriorStream` is the one sampling loop: each call continues the sequence
(the GRU state and the last frame live in buffers, one row per stream,
`DEFAULT_MAX_BATCH` streams for mc.nn~; `reset()` starts a new one), each
frame is drawn from the predicted Gaussian at the temperature given for it
(0: the mean, 1: as trained; below 0 counts as 0, above MAX_TEMPERATURE as
it) and fed back, and the output is denormalised with the corpus statistics,
so it is in the scale the model's `decode` takes. `export-prior`'s file
(prior_export.PriorModule) and a model exported with `ravelive export
--prior` (its `prior` method: models/latent_codec) both play it.

`TrainedPrior` is what both exports read from the run: the network, the
corpus it learnt (the model that encoded it, the statistics), the step, and
its `ravelive.json` entry. `check_latent_space` refuses, in one line, to
embed the prior in a model whose latent space is not the corpus's: the
model file that encoded the corpus records a digest of its weights and
latent rotation (`latent.digest`, models/rave/model.py), the corpus keeps it,
and an export of the same run and step with the same options has the same.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH
from ravelive.errors import ConfigError
from ravelive.generation.corpus_training import corpus_of_run
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.prior import Prior, sample
from ravelive.generation.prior_config import PriorConfig
from ravelive.generation.prior_training import PRIOR
from ravelive.training.checkpoint import load_checkpoint

MAX_TEMPERATURE = 4.0  # a temperature signal above this plays as this: beyond it the frames are noise


class PriorStream(nn.Module):
    """The prior sampled frame by frame, its stream state in buffers; see the module docstring."""

    max_batch: torch.jit.Final[int]
    max_temperature: torch.jit.Final[float]

    def __init__(self, prior: Prior, mean: list[float], std: list[float], max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__()
        self.network = prior
        self.max_batch = max_batch
        self.max_temperature = MAX_TEMPERATURE
        gru = prior.gru
        self.register_buffer("state", torch.zeros(gru.num_layers, max_batch, gru.hidden_size), persistent=False)
        self.register_buffer("previous", torch.zeros(max_batch, prior.dims), persistent=False)
        self.register_buffer("latent_mean", torch.tensor(mean, dtype=torch.float32)[:, None])
        self.register_buffer("latent_std", torch.tensor(std, dtype=torch.float32)[:, None])

    def forward(self, temperature: torch.Tensor) -> torch.Tensor:
        """temperature [batch, 1, frames] -> the next `frames` latent frames [batch, dims, frames], denormalised."""
        batch, frames = temperature.shape[0], temperature.shape[2]
        if batch > self.max_batch:
            raise ValueError("batch " + str(batch) + " is larger than the " + str(self.max_batch)
                             + " streams this prior keeps state for; use a smaller batch")
        temperature = temperature.clamp(0.0, self.max_temperature)
        state = self.state[:, :batch]
        previous = self.previous[:batch]
        frames_out = []
        for t in range(frames):
            mean, log_std, state = self.network.step(previous, state)
            previous = sample(mean, log_std, temperature[:, :, t])
            frames_out.append(previous)
        self.state[:, :batch].copy_(state)
        self.previous[:batch].copy_(previous)
        return torch.stack(frames_out, -1) * self.latent_std + self.latent_mean

    @torch.jit.export
    def reset(self) -> None:
        self.state.zero_()
        self.previous.zero_()


@dataclass(frozen=True)
class TrainedPrior:
    """The last checkpoint of a `train-prior` run, ready to export."""

    run: Path
    step: int  # the checkpoint's
    config: PriorConfig
    corpus: LatentCorpus  # as the checkpoint remembers it: the model that encoded it, its statistics
    network: Prior

    @classmethod
    def load(cls, run: str | Path) -> "TrainedPrior":
        """The run folder `run`'s last checkpoint; ConfigError when it holds none, or not a prior's."""
        checkpoint = load_checkpoint(run, PRIOR)
        corpus = corpus_of_run(checkpoint)
        network = Prior(corpus.model.dims, checkpoint["config"])
        network.load_state_dict(checkpoint["model"])
        return cls(Path(run), checkpoint["step"], checkpoint["config"], corpus, network.eval())

    def stream(self, max_batch: int = DEFAULT_MAX_BATCH) -> PriorStream:
        """The network as a PriorStream, denormalising with the corpus statistics."""
        return PriorStream(self.network, list(self.corpus.mean), list(self.corpus.std), max_batch)

    def describe(self) -> dict[str, Any]:
        """The `prior` entry of an export's ravelive.json: the model it plays for, the run and its step."""
        return {"model": asdict(self.corpus.model), "run": str(self.run), "step": self.step}

    def check_latent_space(self, *, digest: str, sample_rate: int, ratio: int, dims: int, step: int | None) -> None:
        """ConfigError unless a model of latent `digest`, rate, ratio and dims (weights of `step`) encodes the
        corpus's latent space."""
        model = self.corpus.model
        if model.latent_digest is None:
            raise ConfigError(f"{self.run} was trained on latents of {model.name}, which records no latent digest "
                              f"(not a `ravelive export`, or an older one), so no export can be checked against it: "
                              f"export the prior as a file of its own: ravelive export-prior {self.run} --out PRIOR.ts")
        if (digest, sample_rate, ratio, dims) != (model.latent_digest, model.sample_rate, model.ratio, model.dims):
            raise ConfigError(
                f"this export (step {step}) encodes {dims} latents at ratio {ratio}, {sample_rate} Hz, latent digest "
                f"{digest[:12]}, but {self.run} learnt {model.dims} at ratio {model.ratio}, {model.sample_rate} Hz, "
                f"digest {model.latent_digest[:12]} (from {model.name}, step {model.step}): export the run and step "
                f"{model.name} came from with its --fidelity, --dataset and --samplerate, or encode the corpus with "
                f"this export (ravelive latents) and train the prior again")
