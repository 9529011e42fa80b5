"""The prior: a causal autoregressive model of normalised latent frames, trained teacher-forced, played frame by frame.

Per frame t it reads the frame before (a zero frame before the first) and
its recurrent state, and predicts the distribution of frame t: a diagonal
Gaussian, one mean and one log standard deviation per latent dimension.

Why a diagonal Gaussian: a RAVE latent is trained towards a unit normal
posterior, so a normalised corpus frame is close to Gaussian around what the
past predicts; the Gaussian's log-likelihood is closed form, and temperature
has one obvious meaning, the scale of the noise around the mean (t = 0
plays the mean, deterministic; t = 1 samples as trained; above 1 wilder).
What it cannot do is a multimodal next frame within one step (RAVE v1's
prior quantises each dimension into 256 classes for that, at the cost of
dims x 256 logits per frame and a softmax temperature with no mean to fall
back to); across frames the recurrent state still carries which mode the
sequence is in.

The network: a linear projection of the previous frame, a stacked GRU (its
hidden state is all the streaming state there is) and a linear head to
(mean, log std), zero-initialised so the untrained prior predicts the
corpus's own normalised marginal, N(0, 1): the NLL it must beat.

`Prior.forward` is the offline, teacher-forced pass training uses; `step`
advances one frame from an explicit state, which the exported module
(prior_export) keeps in its buffers.
"""

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ravelive.generation.prior_config import PriorConfig

LOG_STD_MIN = -5.0  # the narrowest predicted std, 0.007 corpus standard deviations: no collapse to a spike
LOG_STD_MAX = 2.0  # the widest, 7.4
_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


class Prior(nn.Module):
    """p(z_t | z_<t) for normalised latent frames z [batch, dims, frames]; see the module docstring."""

    def __init__(self, dims: int, config: PriorConfig) -> None:
        super().__init__()
        self.dims = dims
        self.log_std_range = (LOG_STD_MIN, LOG_STD_MAX)  # an attribute: TorchScript reads no module-level floats
        self.inputs = nn.Linear(dims, config.hidden)
        self.gru = nn.GRU(config.hidden, config.hidden, config.layers, batch_first=True)
        self.head = nn.Linear(config.hidden, 2 * dims)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced: the predicted (mean, log std) of every frame of z, each [batch, dims, frames]."""
        previous = F.pad(z, (1, 0))[:, :, :-1]  # frame t sees frames < t; a zero frame starts every sequence
        features, _ = self.gru(self.inputs(previous.transpose(1, 2)))
        mean, log_std = self._distribution(features)
        return mean.transpose(1, 2), log_std.transpose(1, 2)

    def nll(self, z: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of z under the prior, in nats per frame and dimension (a scalar)."""
        mean, log_std = self(z)
        return self.gaussian_nll(z, mean, log_std)

    @staticmethod
    def gaussian_nll(z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of z under N(mean, exp(log_std)^2), elementwise (nats)."""
        return torch.mean(0.5 * ((z - mean) * torch.exp(-log_std)) ** 2 + log_std + _HALF_LOG_TWO_PI)

    def step(self, previous: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One frame: previous [batch, dims], state [layers, batch, hidden] -> (mean, log std, next state)."""
        features, state = self.gru(self.inputs(previous)[:, None, :], state)
        mean, log_std = self._distribution(features[:, 0])
        return mean, log_std, state

    def _distribution(self, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.head(features).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_range[0], self.log_std_range[1])


def sample(mean: torch.Tensor, log_std: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """A draw from N(mean, (temperature * std)^2); temperature broadcasts (0: the mean itself)."""
    return mean + temperature * torch.exp(log_std) * torch.randn_like(mean)
