"""Filtered noise bands added to the decoder's output (RAVE's NoiseGenerator).

Noisy sounds (breath, cymbals, bow noise) are hard for a conv decoder to
draw sample by sample; RAVE lets it shape noise instead. From the decoder's
last hidden features (band rate) a stack of strided convs gives, per noise
frame of `frame` band frames, `frame // 2 + 1` amplitudes per band: the
magnitude response of a zero-phase filter at the frequency resolution one
frame allows. Each frame of uniform white noise is filtered by its own
response in the frequency domain (rfft, multiply, irfft of `frame`
samples): one frame never reaches into the next, so the noise streams frame
by frame with no state besides the convs'. (RAVE lets a few more bands
than that resolution through an impulse-response truncation; here the
count follows from the frame.)

`amplitudes` is deterministic and follows the cached-conv contract; the
white noise is not, so streaming equals offline for the amplitudes only.
"""

import math

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d, CachedDelay, CachedSequential

QUIET_BIAS = 5.0  # amplitudes are sigmoid(x - QUIET_BIAS): an untrained generator starts nearly silent


class NoiseGenerator(nn.Module):
    """Hidden features [b, channels, m] -> noise bands [b, bands, m] (m a multiple of `frame`)."""

    bands: torch.jit.Final[int]
    frame: torch.jit.Final[int]
    bins: torch.jit.Final[int]
    quiet_bias: torch.jit.Final[float]

    def __init__(
        self,
        channels: int,
        bands: int,
        ratios: tuple[int, ...],
        hidden: int,
        *,
        causal: bool = False,
        streaming: bool = False,
        input_delay: int = 0,
        delay_at_least: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """`delay_at_least` (band frames): delay the noise further to meet a parallel path that late."""
        super().__init__()
        self.bands = bands
        self.frame = math.prod(ratios)
        self.bins = self.frame // 2 + 1
        self.quiet_bias = QUIET_BIAS
        layers: list[nn.Module] = []
        widths = [channels] + [hidden] * (len(ratios) - 1) + [bands * self.bins]
        for index, ratio in enumerate(ratios):
            layers.append(
                CachedConv1d(
                    widths[index], widths[index + 1], 3, stride=ratio, pre_activation=index > 0,
                    causal=causal, streaming=streaming, max_batch=max_batch,
                    input_delay=layers[-1].delay if layers else input_delay,
                )
            )
        self.amplitude_net = CachedSequential(*layers)
        self.input_delay = input_delay
        # a stream d noise frames late, each frame spread over `frame` band frames, is d * frame band frames late
        own_delay = self.amplitude_net.delay * self.frame
        self.delay = max(own_delay, delay_at_least)
        self.align = CachedDelay(
            bands, self.delay - own_delay, streaming=streaming, input_delay=own_delay, max_batch=max_batch
        )
        self.up, self.down, self.block_multiple = 1, 1, self.frame

    @torch.jit.export
    def amplitudes(self, h: torch.Tensor) -> torch.Tensor:
        """[b, channels, m] -> [b, bands, bins, m / frame] in (0, 1)."""
        raw = self.amplitude_net(h)
        return torch.sigmoid(raw - self.quiet_bias).reshape(raw.shape[0], self.bands, self.bins, raw.shape[-1])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        amplitudes = self.amplitudes(h)  # [b, bands, bins, frames]
        batch, frames = amplitudes.shape[0], amplitudes.shape[-1]
        white = torch.rand(batch, self.bands, frames, self.frame, dtype=h.dtype, device=h.device) * 2 - 1
        spectrum = torch.fft.rfft(white, dim=-1) * amplitudes.transpose(2, 3)
        noise = torch.fft.irfft(spectrum, n=self.frame, dim=-1)  # [b, bands, frames, frame]
        return self.align(noise.reshape(batch, self.bands, frames * self.frame))

    @torch.jit.export
    def reset(self) -> None:
        self.amplitude_net.reset()
        self.align.reset()
