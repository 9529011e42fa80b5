"""The phase-2 discriminators: multi-period and multi-scale, combined (RAVE v2's CombineDiscriminators).

A discriminator is a stack of strided convs that scores audio as real or
reconstructed; its intermediate feature maps also feed the feature-matching
loss. Two views catch different faults (HiFi-GAN's design, which RAVE v2
uses):

- multi-period: the signal [b, 1, n] folded into [b, 1, n / p, p] for a
  prime period p, convolved along time only: each of the p phases is judged
  on its own, which exposes periodic artefacts (buzz, wrong pitch structure);
- multi-scale: the signal at 1, 1/2, 1/4 ... of the rate (average pooled),
  convolved in 1-D: the overall texture at several resolutions.

Every discriminator returns (logits, feature maps); `CombinedDiscriminator`
returns a list of both, one entry per discriminator. Weight normalisation
keeps each layer's gain in check, as RAVE's.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

KERNEL = 15  # along time (RAVE's ConvNet kernel)
STRIDE = 4
SLOPE = 0.2  # leaky ReLU slope (RAVE's, HiFi-GAN's)
Scores = tuple[torch.Tensor, list[torch.Tensor]]


class ConvDiscriminator(nn.Module):
    """Strided convs, channels x4 per layer (capped), leaky ReLU; 1-D on audio or 2-D (k x 1) on folded audio."""

    def __init__(self, capacity: int, layers: int, *, two_d: bool, max_channels: int = 1024) -> None:
        super().__init__()
        conv = nn.Conv2d if two_d else nn.Conv1d
        kernel, stride, pad = ((KERNEL, 1), (STRIDE, 1), (KERNEL // 2, 0)) if two_d else (KERNEL, STRIDE, KERNEL // 2)
        widths = [1] + [min(max_channels, capacity * 4**i) for i in range(layers)]
        self.layers = nn.ModuleList(
            weight_norm(conv(widths[i], widths[i + 1], kernel, stride=stride, padding=pad)) for i in range(layers)
        )
        last_kernel, last_pad = ((3, 1), (1, 0)) if two_d else (3, 1)
        self.out = weight_norm(conv(widths[-1], 1, last_kernel, padding=last_pad))

    def forward(self, x: torch.Tensor) -> Scores:
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), SLOPE)
            features.append(x)
        return self.out(x), features


class PeriodDiscriminator(nn.Module):
    """Audio [b, 1, n] folded by `period` (padded by reflection to a whole number of periods)."""

    def __init__(self, period: int, capacity: int, layers: int) -> None:
        super().__init__()
        self.period = period
        self.net = ConvDiscriminator(capacity, layers, two_d=True)

    def forward(self, x: torch.Tensor) -> Scores:
        pad = -x.shape[-1] % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect")
        b, c, n = x.shape
        return self.net(x.reshape(b, c, n // self.period, self.period))


class ScaleDiscriminator(nn.Module):
    """Audio average-pooled `downsample` times by 2 (smooth enough to stand for resampling), then 1-D convs."""

    def __init__(self, downsample: int, capacity: int, layers: int) -> None:
        super().__init__()
        self.downsample = downsample
        self.net = ConvDiscriminator(capacity, layers, two_d=False)

    def forward(self, x: torch.Tensor) -> Scores:
        for _ in range(self.downsample):
            x = F.avg_pool1d(x, 4, 2, padding=1)
        return self.net(x)


class CombinedDiscriminator(nn.Module):
    """Every period discriminator, then every scale discriminator; forward gives one (logits, features) each."""

    def __init__(self, periods: Sequence[int], scales: int, capacity: int, layers: int) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, capacity, layers) for p in periods]
            + [ScaleDiscriminator(i, capacity, layers) for i in range(scales)]
        )

    def forward(self, x: torch.Tensor) -> list[Scores]:
        return [discriminator(x) for discriminator in self.discriminators]


def split_scores(scores: list[Scores], batch: int) -> tuple[list[Scores], list[Scores]]:
    """Scores of cat([real, fake]) -> (real scores, fake scores): one discriminator pass judges both."""

    def half(tensor: torch.Tensor, second: bool) -> torch.Tensor:
        return tensor[batch:] if second else tensor[:batch]

    return tuple(
        [(half(logits, second), [half(f, second) for f in features]) for logits, features in scores]
        for second in (False, True)
    )
