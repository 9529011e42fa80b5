"""Audio descriptors at the latent rate: loudness and timbre as numbers a knob can set.

A descriptor-conditioned model (issue 10) learns to decode these as
controls, and `--descriptors follow` measures them on the live input, so the
same function serves training batches and the stream. Frame k describes the
samples of latent frame k, `[k * hop, (k + 1) * hop)`: the analysis window
(`window` samples, Hann) is centred on that span, the signal zero-padded by
`(window - hop) / 2` each side, so `n` samples give `n // hop` frames and
frame k is aligned with the encoder's frame k.

Per frame, with X the window's spectrum, f the bin frequencies (Hz):

- `rms`: root mean square of the frame's own `hop` samples (linear; a full-scale sine gives 1/sqrt(2));
- `centroid`: sum(f |X|) / sum(|X|), Hz (librosa's spectral_centroid);
- `bandwidth`: sqrt(sum((f - centroid)^2 |X|) / sum(|X|)), Hz (librosa's spectral_bandwidth, p = 2);
- `flatness`: geometric over arithmetic mean of |X|^2, 0 (a tone) to 1 (flat); white noise gives ~0.56;
- `rolloff`: the frequency below which 85% of sum(|X|) lies, Hz (librosa's spectral_rolloff).

A silent frame has centroid, bandwidth and rolloff 0 and flatness 1 (no
spectrum to prefer a frequency), instead of 0/0.
"""

from collections.abc import Sequence

import torch
from torch import nn

from ravelive.errors import ConfigError

DESCRIPTORS = ("rms", "centroid", "bandwidth", "flatness", "rolloff")
ROLLOFF = 0.85  # fraction of the magnitude below the rolloff frequency
POWER_FLOOR = 1e-10  # |X|^2 floor in the flatness logs (librosa's amin): silence stays finite


class Descriptors(nn.Module):
    """[batch, n] audio -> [batch, len(names), n // hop] descriptor frames; see the module docstring."""

    def __init__(self, names: Sequence[str], sample_rate: int, hop: int, window: int | None = None) -> None:
        super().__init__()
        unknown = [name for name in names if name not in DESCRIPTORS]
        if unknown or not names:
            raise ConfigError(f"descriptors {', '.join(unknown) or '(none)'}: expected one or more of "
                              f"{', '.join(DESCRIPTORS)}, comma-separated (--descriptors rms,centroid)")
        self.window = window or 2 * hop
        if hop < 1 or self.window < hop or (self.window - hop) % 2:
            raise ConfigError(f"descriptor window {self.window} with hop {hop}: expected a window of at least the "
                              f"hop, longer by an even number of samples (default: twice the hop)")
        self.names = tuple(names)
        self.hop = hop
        self.register_buffer("hann", torch.hann_window(self.window), persistent=False)
        self.register_buffer("frequencies", torch.fft.rfftfreq(self.window, 1.0 / sample_rate), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.shape[-1] // self.hop
        audio = audio[..., : frames * self.hop]
        side = (self.window - self.hop) // 2
        padded = nn.functional.pad(audio, (side, side))
        magnitude = torch.stft(padded, self.window, self.hop, window=self.hann, center=False,
                               return_complex=True).abs()[..., :frames]  # [batch, bins, frames]
        values = {}
        for name in self.names:
            values[name] = getattr(self, f"_{name}")(audio, magnitude, frames, values)
        return torch.stack([values[name] for name in self.names], dim=1)

    def _rms(self, audio, magnitude, frames, values) -> torch.Tensor:
        return audio.reshape(*audio.shape[:-1], frames, self.hop).pow(2).mean(dim=-1).sqrt()

    def _centroid(self, audio, magnitude, frames, values) -> torch.Tensor:
        total = magnitude.sum(dim=1)
        weighted = (self.frequencies[:, None] * magnitude).sum(dim=1)
        return torch.where(total > 0, weighted / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)

    def _bandwidth(self, audio, magnitude, frames, values) -> torch.Tensor:
        centroid = values.get("centroid")
        if centroid is None:
            centroid = self._centroid(audio, magnitude, frames, values)
        total = magnitude.sum(dim=1)
        spread = ((self.frequencies[:, None] - centroid[:, None, :]).pow(2) * magnitude).sum(dim=1)
        return torch.where(total > 0, spread / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0).sqrt()

    def _flatness(self, audio, magnitude, frames, values) -> torch.Tensor:
        power = magnitude.pow(2).clamp_min(POWER_FLOOR)
        return power.log().mean(dim=1).exp() / power.mean(dim=1)

    def _rolloff(self, audio, magnitude, frames, values) -> torch.Tensor:
        cumulative = magnitude.cumsum(dim=1)
        threshold = ROLLOFF * cumulative[:, -1:, :]
        below = (cumulative < threshold).sum(dim=1)  # bins wholly below the threshold
        rolloff = self.frequencies[below.clamp_max(len(self.frequencies) - 1)]
        return torch.where(cumulative[:, -1, :] > 0, rolloff, 0.0)
