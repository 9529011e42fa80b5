"""`ravelive export-prior PRIOR --out PRIOR.ts`: a trained prior as an nn~-contract file with one method, `prior`.

    prior  [1, ratio, dims, ratio]   temperature at the latent rate -> latent frames

Each call continues the sequence: the GRU state and the last frame live in
buffers of the module (one row per stream, `DEFAULT_MAX_BATCH` streams for
mc.nn~), `reset()` starts a new sequence. Each frame is sampled from the
predicted Gaussian with the temperature given for it (0: the mean, 1: as
trained; below 0 counts as 0, above MAX_TEMPERATURE as it) and fed back.
The output is denormalised with the corpus statistics, so it feeds the
model's `decode` directly: in Max, `[nn~ prior.ts prior]` into
`[nn~ model.ts decode]`, one outlet per latent into one inlet per latent.
The `sr` is the model's, and `ravelive.json` names the model it belongs to
(`prior.model`: name, sha256, rate, ratio, dims); prior_file's
`open_prior` checks it against the model it is to play into.

Why a file of its own rather than a `prior` method inside the model's file:
the model may be RAVE's own export (or anyone's), a TorchScript archive we
did not write; adding a method means re-scripting someone else's code, and
a file that changed under its sha256 is no longer the model the corpus and
the prior were made from. Two files chain the same way in nn~ and in `serve`.

Verification (models/export.py): the method is random at temperature > 0,
so it is declared non-deterministic (the generic check runs it at batch 1
and 4); at temperature 0 it is deterministic, so the reloaded file is also
checked there, one frame per call, against the module it was scripted from
in one call: the state carries over between calls exactly.
"""

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH
from ravelive.engine.stream import PRIOR_METHOD
from ravelive.errors import ModelRuntimeError
from ravelive.generation.corpus_training import corpus_of_run
from ravelive.generation.latents import ModelIdentity
from ravelive.generation.prior import Prior, sample
from ravelive.generation.prior_training import PRIOR
from ravelive.models.export import TOLERANCE, ContractModule, export_model
from ravelive.models.nn_model import NNModel
from ravelive.training.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

MAX_TEMPERATURE = 4.0  # a temperature signal above this plays as this: beyond it the frames are noise
CHECK_FRAMES = 24  # frames of the temperature-0 check


class PriorModule(ContractModule):
    """The exported prior: method `prior`, its stream state in buffers; see the module docstring."""

    def __init__(self, prior: Prior, model: ModelIdentity, mean: list[float], std: list[float],
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__(model.sample_rate)
        self.network = prior
        self.max_batch = max_batch
        self.max_temperature = MAX_TEMPERATURE  # an attribute: TorchScript reads no module-level floats
        gru = prior.gru
        self.register_buffer("state", torch.zeros(gru.num_layers, max_batch, gru.hidden_size), persistent=False)
        self.register_buffer("previous", torch.zeros(max_batch, model.dims), persistent=False)
        self.register_buffer("latent_mean", torch.tensor(mean, dtype=torch.float32)[:, None])
        self.register_buffer("latent_std", torch.tensor(std, dtype=torch.float32)[:, None])
        self.register_method(PRIOR_METHOD, [1, model.ratio, model.dims, model.ratio], ["temperature"],
                             [f"latent {d}" for d in range(model.dims)], delay=0, deterministic=False)

    @torch.jit.export
    def prior(self, temperature: torch.Tensor) -> torch.Tensor:
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
class ExportedPrior:
    path: Path
    step: int  # the checkpoint's
    model: ModelIdentity  # the model it plays for


def export_prior(run: str | Path, out: str | Path) -> ExportedPrior:
    """Export the last checkpoint of the prior run `run` to `out`, verified; see the module docstring."""
    checkpoint = load_checkpoint(run, PRIOR)
    corpus = corpus_of_run(checkpoint)
    prior = Prior(corpus.model.dims, checkpoint["config"])
    prior.load_state_dict(checkpoint["model"])
    module = PriorModule(prior, corpus.model, list(corpus.mean), list(corpus.std))
    extras = {"prior": {"model": asdict(corpus.model), "step": checkpoint["step"]}}
    path = export_model(module, out, config=asdict(checkpoint["config"]), extras=extras,
                        check=lambda model: _check_temperature_zero(model, module))
    return ExportedPrior(path, checkpoint["step"], corpus.model)


def _check_temperature_zero(model: NNModel, module: PriorModule) -> None:
    """At temperature 0, frame-by-frame calls of the reloaded file equal one call of the scripted-from module."""
    zeros = torch.zeros(2, 1, CHECK_FRAMES)
    with torch.inference_mode():
        module.reset()
        expected = module.prior(zeros)
        module.reset()
        model.module.reset()
        streamed = torch.cat([model(PRIOR_METHOD, zeros[:, :, t : t + 1]) for t in range(CHECK_FRAMES)], -1)
        model.module.reset()
    error = (streamed - expected).abs().max().item()
    if not error <= TOLERANCE * max(1.0, expected.abs().max().item()):
        raise ModelRuntimeError(f"{model.path}: method '{PRIOR_METHOD}' at temperature 0, one frame per call, "
                                f"differs from one call on {CHECK_FRAMES} frames (max difference {error:.3g}): its "
                                f"state does not carry over between calls")
