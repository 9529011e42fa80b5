"""`ravelive export-prior PRIOR --out PRIOR.ts`: a trained prior as an nn~-contract file with one method, `prior`.

    prior  [1, ratio, dims, ratio]   temperature at the latent rate -> latent frames

The sampling and its stream state are prior_stream's `PriorStream` (the
loop a model exported with `ravelive export --prior` plays too): each call
continues the sequence, `reset()` starts a new one, the temperature scales
the noise around the predicted mean, and the frames come out denormalised,
so they feed the model's `decode` directly: in Max, `[nn~ prior.ts prior]`
into `[nn~ model.ts decode]`, one outlet per latent into one inlet per latent.
The `sr` is the model's, and `ravelive.json` names the model it belongs to
(`prior.model`: name, sha256, rate, ratio, dims; the run and its step); prior_file's
`open_prior` checks it against the model it is to play into.

Why a file of its own rather than a `prior` method inside the model's file:
the model may be RAVE's own export (or anyone's), a TorchScript archive we
did not write; adding a method means re-scripting someone else's code, and
a file that changed under its sha256 is no longer the model the corpus and
the prior were made from. Two files chain the same way in nn~ and in `serve`.
A model exported by `ravelive export` can carry the prior inside instead
(`ravelive export RUN --out MODEL.ts --prior PRIOR`, its own `prior`
method): one file, for models we build ourselves.

Verification is models/export.py's for a random method: at temperature 0
the reloaded file, one frame per call, equals one call on the whole signal
(the state carries over between calls exactly), and at temperature 1 its
frames are finite.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH
from ravelive.engine.stream import PRIOR_METHOD
from ravelive.generation.latents import ModelIdentity
from ravelive.generation.prior import Prior
from ravelive.generation.prior_stream import PriorStream, TrainedPrior
from ravelive.models.export import ContractModule, export_model


class PriorModule(ContractModule):
    """The exported prior: method `prior`, a PriorStream (its state in buffers); see the module docstring."""

    def __init__(self, prior: Prior, model: ModelIdentity, mean: list[float], std: list[float],
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__(model.sample_rate)
        self.stream = PriorStream(prior, mean, std, max_batch)
        self.register_method(PRIOR_METHOD, [1, model.ratio, model.dims, model.ratio], ["temperature"],
                             [f"latent {d}" for d in range(model.dims)], delay=0, deterministic=False)

    @torch.jit.export
    def prior(self, temperature: torch.Tensor) -> torch.Tensor:
        """temperature [batch, 1, frames] -> the next `frames` latent frames [batch, dims, frames], denormalised."""
        return self.stream(temperature)

    @torch.jit.export
    def reset(self) -> None:
        self.stream.reset()


@dataclass(frozen=True)
class ExportedPrior:
    path: Path
    step: int  # the checkpoint's
    model: ModelIdentity  # the model it plays for


def export_prior(run: str | Path, out: str | Path) -> ExportedPrior:
    """Export the last checkpoint of the prior run `run` to `out`, verified; see the module docstring."""
    trained = TrainedPrior.load(run)
    corpus = trained.corpus
    module = PriorModule(trained.network, corpus.model, list(corpus.mean), list(corpus.std))
    path = export_model(module, out, config=asdict(trained.config), extras={"prior": trained.describe()})
    return ExportedPrior(path, trained.step, corpus.model)
