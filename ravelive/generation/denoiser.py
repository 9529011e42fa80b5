"""The denoiser of latent diffusion: a 1-D U-Net over a latent sequence, conditioned on the diffusion time step.

Shaped like RAVE-Latent-Diffusion's UNetV0 (audio-diffusion-pytorch), written
here from the idea, not its code:

- level i downsamples by `factors[i]` (a strided conv; factor 1: none) to
  `channels[i]`, then runs `items[i]` residual blocks, each followed by
  multi-head self-attention where `attentions[i]` (the coarse levels: there
  a frame stands for many seconds, and attention sees the whole sequence);
- the way up mirrors it: each level takes the skip of its way down
  (concatenated), runs its blocks and attention, and upsamples (nearest,
  then a conv: no checkerboard) back to the level above;
- every residual block hears the time step through a sinusoidal embedding
  and an MLP, as a per-channel scale and shift after its first norm.

`forward(x, t)` takes noisy normalised latents [batch, dims, frames] and
time steps t [batch] (the scheduler's, 0 to 999) and returns the predicted
velocity v (the v-objective), of x's shape. Output layers start at zero, so
an untrained denoiser predicts v = 0 and each block starts as the identity.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ravelive.generation.diffusion_config import DiffusionConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels)


def _zero(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class TimeEmbedding(nn.Module):
    """Sinusoids of the time step (periods from 1 to 10000 steps), then a two-layer MLP."""

    def __init__(self, channels: int, features: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, features), nn.SiLU(), nn.Linear(features, features))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.channels // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        angles = t.float()[:, None] * frequencies[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


class ResidualBlock(nn.Module):
    """norm, SiLU, conv, time scale and shift, norm, SiLU, conv; plus the input (1x1-projected if widths differ)."""

    def __init__(self, in_channels: int, out_channels: int, time_features: int) -> None:
        super().__init__()
        self.norm_in = _norm(in_channels)
        self.conv_in = nn.Conv1d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_features, 2 * out_channels)
        self.norm_out = _norm(out_channels)
        self.conv_out = _zero(nn.Conv1d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(F.silu(self.norm_in(x)))
        scale, shift = self.time(time)[:, :, None].chunk(2, dim=1)
        h = self.norm_out(h) * (1 + scale) + shift
        return self.skip(x) + self.conv_out(F.silu(h))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the frames, residual."""

    def __init__(self, channels: int, heads: int, features: int) -> None:
        super().__init__()
        self.heads, self.features = heads, features
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * heads * features, 1)
        self.out = _zero(nn.Conv1d(heads * features, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape
        q, k, v = self.qkv(self.norm(x)).view(batch, 3, self.heads, self.features, frames).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q, k, v)  # [batch, heads, frames, features]
        return x + self.out(attended.transpose(-1, -2).reshape(batch, self.heads * self.features, frames))


class Level(nn.Module):
    """The blocks of one level (each followed by attention when asked for), on the way down or up."""

    def __init__(self, in_channels: int, channels: int, items: int, attention: bool, config: DiffusionConfig,
                 time_features: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualBlock(in_channels if i == 0 else channels, channels, time_features) for i in range(items))
        self.attentions = nn.ModuleList(
            SelfAttention(channels, config.attention_heads, config.attention_features) if attention else nn.Identity()
            for _ in range(items))

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        for block, attention in zip(self.blocks, self.attentions):
            x = attention(block(x, time))
        return x


class Downsample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        if factor == 1:
            self.conv = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        else:  # each output frame sees its `factor` frames and half a factor of each neighbour's
            pad = factor // 2
            self.conv = nn.Conv1d(in_channels, out_channels, factor + 2 * pad, stride=factor, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv1d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.factor, mode="nearest") if self.factor > 1 else x)


class Denoiser(nn.Module):
    """The U-Net: v = denoiser(noisy latents [batch, dims, frames], time steps [batch]); see the module."""

    def __init__(self, dims: int, config: DiffusionConfig) -> None:
        super().__init__()
        self.dims, self.stride = dims, config.stride
        width = config.channels[0]
        time_features = 4 * width
        self.time = TimeEmbedding(width, time_features)
        self.input = nn.Conv1d(dims, width, 3, padding=1)
        above = [width, *config.channels[:-1]]  # the width of the level above each level
        self.downsample = nn.ModuleList(Downsample(a, c, f) for a, c, f in zip(above, config.channels, config.factors))
        self.down = nn.ModuleList(Level(c, c, n, a, config, time_features)
                                  for c, n, a in zip(config.channels, config.items, config.attentions))
        self.up = nn.ModuleList(Level(2 * c, c, n, a, config, time_features)
                                for c, n, a in zip(config.channels, config.items, config.attentions))
        self.upsample = nn.ModuleList(Upsample(c, a, f) for a, c, f in zip(above, config.channels, config.factors))
        self.output = nn.Sequential(_norm(width), nn.SiLU(), _zero(nn.Conv1d(width, dims, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time = self.time(t.expand(x.shape[0]))
        h = self.input(x)
        skips = []
        for downsample, level in zip(self.downsample, self.down):
            h = level(downsample(h), time)
            skips.append(h)
        for upsample, level in zip(reversed(self.upsample), reversed(self.up)):
            h = upsample(level(torch.cat([h, skips.pop()], dim=1), time))
        return self.output(h)
