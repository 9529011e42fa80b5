"""Filtered noise bands added to the decoder's output (RAVE's NoiseGenerator).

Noisy sounds (breath, cymbals, bow noise) are hard for a conv decoder to
draw sample by sample; RAVE lets it shape noise instead. From the decoder's
last hidden features (band rate) a stack of strided convs (kernel 3, as
RAVE's) gives, per noise frame of `frame` band frames, `frame // 2 + 1`
amplitudes per band: the magnitude response of a zero-phase filter at the
frequency resolution one frame allows. Each frame of white noise is
filtered by its own response in the frequency domain (rfft, multiply, irfft
of `frame` samples): one frame never reaches into the next. (RAVE lets a
few more bands than that resolution through an impulse-response
truncation; here the count follows from the frame.)

The white noise is a hash of its position in the stream (band, band frame),
not a draw from a generator: noise frame t of a stream is the same numbers
whether the stream is computed at once or block by block, so the whole
decoder, noise included, streams to exactly its offline output. A stream
keeps its position in a buffer (it starts `amplitude_net.delay` frames
early: the frames a fresh stream spends warming up, silent since they stand
for time before the signal). Training wants fresh
noise in every example: in `train()` mode each batch row starts at a random
position.
"""

import math

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d, CachedDelay, CachedSequential

QUIET_BIAS = 5.0  # amplitudes are sigmoid(x - QUIET_BIAS): an untrained generator starts nearly silent


def white_noise(keys: torch.Tensor) -> torch.Tensor:
    """Uniform noise in [-1, 1), one value per int64 key, the same value for the same key.

    An integer hash on 32-bit words held in int64 (mask 0xFFFFFFFF; the mixing constant 0x45D9F3B
    keeps every product below 2**63). The constants are literals: TorchScript reads no globals.
    """
    x = keys & 0xFFFFFFFF
    x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
    x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
    x = (x >> 16) ^ x
    return x.to(torch.float32) * (2.0 / 4294967296.0) - 1.0


class NoiseGenerator(nn.Module):
    """Hidden features [b, channels, m] -> noise bands [b, bands, m] (m a multiple of `frame`)."""

    bands: torch.jit.Final[int]
    frame: torch.jit.Final[int]
    bins: torch.jit.Final[int]
    quiet_bias: torch.jit.Final[float]
    streaming: torch.jit.Final[bool]
    start: torch.jit.Final[int]

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
        self.streaming = streaming
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
        # band frame of the stream at which the next call's noise starts (offline calls start at 0)
        self.start = -own_delay if streaming else 0
        self.register_buffer("position", torch.tensor(self.start), persistent=False)

    @torch.jit.export
    def amplitudes(self, h: torch.Tensor) -> torch.Tensor:
        """[b, channels, m] -> [b, bands, bins, m / frame] in (0, 1)."""
        raw = self.amplitude_net(h)
        return torch.sigmoid(raw - self.quiet_bias).reshape(raw.shape[0], self.bands, self.bins, raw.shape[-1])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        amplitudes = self.amplitudes(h)  # [b, bands, bins, frames]
        batch, frames = amplitudes.shape[0], amplitudes.shape[-1]
        white = self._white(batch, frames * self.frame, h.device).reshape(batch, self.bands, frames, self.frame)
        spectrum = torch.fft.rfft(white, dim=-1) * amplitudes.transpose(2, 3)
        noise = torch.fft.irfft(spectrum, n=self.frame, dim=-1)  # [b, bands, frames, frame]
        return self.align(noise.reshape(batch, self.bands, frames * self.frame)).to(h.dtype)

    def _white(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        """[batch, bands, length] of white noise at this call's stream positions."""
        positions = torch.arange(length, device=device) + self.position.to(device)
        if self.streaming:
            self.position.add_(length)
        rows = torch.zeros(batch, 1, 1, dtype=torch.int64, device=device)
        if self.training:  # a fresh stretch of noise for every example
            rows = torch.randint(0, 1 << 31, (batch, 1, 1), device=device)
        band = torch.arange(self.bands, device=device)[None, :, None]
        white = white_noise((rows + positions[None, None, :]) * self.bands + band)
        # a fresh stream's first frames stand for time before the signal, where offline there is nothing
        return white * (positions >= 0).to(white.dtype)

    @torch.jit.export
    def reset(self) -> None:
        self.amplitude_net.reset()
        self.align.reset()
        self.position.fill_(self.start)
