"""The latent between encoder and decoder: what training samples and regularises, what export plays.

Each kind takes the encoder's raw output and gives

- `outputs(latent_dims)`: how many raw channels it needs from the encoder;
- `deterministic(raw)`: the latent a live model plays (nn~'s `encode`);
- `sample(raw) -> (z, regularization)`: the latent the decoder trains on and
  the scalar term the loss weighs (`beta * regularization` in RAVE).

`VariationalLatent` (RAVE's VariationalEncoder): raw = mean, scale;
std = softplus(scale) + 1e-4; z = mean + std * eps; the KL divergence to a
unit Gaussian, summed over latent channels, averaged over batch and frames.
`WassersteinLatent` (RAVE's WasserteinEncoder): raw is the latent; the term
is the maximum mean discrepancy between its frames and Gaussian draws.
"""

import torch
from torch import nn
from torch.nn import functional as F

MIN_STD = 1e-4  # keeps log(var) finite when the encoder pushes a scale to zero


class VariationalLatent(nn.Module):
    """Mean / scale -> reparameterised sample and KL term (RAVE v2's latent)."""

    @staticmethod
    def outputs(latent_dims: int) -> int:
        return 2 * latent_dims

    def deterministic(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.chunk(2, 1)[0]

    @torch.jit.unused
    def sample(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, scale = raw.chunk(2, 1)
        std = F.softplus(scale) + MIN_STD
        var = std * std
        z = mean + std * torch.randn_like(mean)
        kl = (mean * mean + var - torch.log(var) - 1).sum(1).mean()
        return z, kl


class WassersteinLatent(nn.Module):
    """Deterministic latent, regularised towards a unit Gaussian by an MMD term."""

    @staticmethod
    def outputs(latent_dims: int) -> int:
        return latent_dims

    def deterministic(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    @torch.jit.unused
    def sample(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = raw.transpose(1, 2).reshape(-1, raw.shape[1])  # every (batch, frame) is one draw
        return raw, _mmd(frames, torch.randn_like(frames))


def _mean_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian kernel between the rows of x and y, width scaled by the dimension."""
    distances = (x[:, None] - y[None]).pow(2).mean(2) / x.shape[-1]
    return torch.exp(-distances).mean()


def _mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _mean_kernel(x, x) + _mean_kernel(y, y) - 2 * _mean_kernel(x, y)


LATENTS = {"vae": VariationalLatent, "wasserstein": WassersteinLatent}
"""RaveConfig.regularizer -> latent module."""
