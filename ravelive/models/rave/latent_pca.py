"""The latent's principal axes: what an export keeps of it, and the rotation it plays through.

A trained encoder rarely uses every latent dimension: a few directions of
its latent means carry most of the dataset's variance. `LatentPCA` holds the
principal analysis of those means (fitted at export time by
`ravelive.training.latent_fit`): their mean, the principal directions
(rows of `components`, by decreasing variance) and the cumulative share of
variance of the first 1, 2 ... dims (`fidelity`, RAVE's name), and `kept`,
how many of them an export keeps. `with_fidelity(F)` keeps the fewest dims
whose cumulative fidelity reaches F. (RAVE 2.3.1's export takes
`max(argmax(fidelity > F), 1)`, one dim fewer than that, then rounds it up
to a power of two; ravelive keeps exactly the dims F asks for.)

`LatentProjection` is that rotation inside the exported model, in buffers:

    encode: z -> components[:kept] @ (z - mean)          kept dims, centred, on the principal axes
    decode: y -> components[:kept].T @ y + mean          back to the decoder's latent

The dims an export drops are padded with zeros before rotating back: the
dataset's mean along those axes, the likeliest value, and deterministic, so
`decode` and `forward` stream to exactly their offline outputs and export can
verify them. (RAVE pads them with unit Gaussian noise, the prior a VAE's
decoder saw in training; that makes `decode` random.) With every dim kept the
rotation is orthogonal, so decode(encode(x)) is the model's own
reconstruction to float precision. Without a fit (`LatentProjection(None, n)`)
the latent passes through untouched.
"""

from dataclasses import dataclass, replace

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedDelay, fixed_conv
from ravelive.errors import ConfigError


@dataclass(frozen=True)
class LatentPCA:
    """Principal axes of a model's latent means over a dataset."""

    mean: torch.Tensor  # [latent_dims]
    components: torch.Tensor  # [latent_dims, latent_dims], row i the i-th principal direction
    fidelity: tuple[float, ...]  # fidelity[i]: share of the variance in the first i + 1 directions
    examples: int  # dataset examples the fit encoded
    kept: int = 0  # dims an export keeps; 0: all of them

    def __post_init__(self) -> None:
        if self.kept == 0:
            object.__setattr__(self, "kept", len(self.fidelity))

    def with_fidelity(self, fidelity: float) -> "LatentPCA":
        """This fit keeping the fewest dims whose cumulative fidelity is at least `fidelity` (0 < F <= 1)."""
        check_fidelity(fidelity)
        if fidelity >= 1.0:  # float sums may stop a hair below 1: F = 1 means every dim
            return replace(self, kept=len(self.fidelity))
        kept = next((i + 1 for i, reached in enumerate(self.fidelity) if reached >= fidelity), len(self.fidelity))
        return replace(self, kept=kept)


def check_fidelity(fidelity: float) -> None:
    if not 0.0 < fidelity <= 1.0:
        raise ConfigError(f"--fidelity {fidelity}: expected a share of the latent variance in (0, 1], e.g. 0.95")


class LatentProjection(nn.Module):
    """Rotates latents [b, latent_dims, t] onto `pca`'s first `kept` axes (`project`) and back (`restore`).

    Both are 1x1 cached convolutions (`dsp.cached_conv.fixed_conv`): `project` is built for the
    encoder's stream, `input_delay` latent frames late, and zeroes those frames as every layer does.
    """

    kept: torch.jit.Final[int]

    def __init__(
        self,
        pca: LatentPCA | None,
        latent_dims: int,
        *,
        streaming: bool = False,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        common = dict(streaming=streaming, max_batch=max_batch)
        if pca is None:
            self.kept = latent_dims
            self.to_axes = CachedDelay(latent_dims, 0, input_delay=input_delay, **common)
            self.from_axes = CachedDelay(latent_dims, 0, **common)
        else:
            if pca.components.shape != (latent_dims, latent_dims):
                raise ValueError(f"a latent PCA of shape {tuple(pca.components.shape)} for {latent_dims} latent dims")
            self.kept = pca.kept
            axes, mean = pca.components[: pca.kept].double(), pca.mean.double()
            self.to_axes = fixed_conv(axes[:, :, None], -(axes @ mean), input_delay=input_delay, **common)
            self.from_axes = fixed_conv(axes.T[:, :, None], mean, **common)
        self.delay = input_delay

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [b, latent_dims, t] -> [b, kept, t], centred, on the principal axes."""
        return self.to_axes(z)

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        """[b, kept, t] -> latent [b, latent_dims, t], the dropped axes at the dataset's mean."""
        return self.from_axes(y)

    @torch.jit.export
    def reset(self) -> None:
        self.to_axes.reset()
        self.from_axes.reset()
