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
from typing import List

import torch
from torch import nn

from ravelive.errors import ConfigError

DESCRIPTORS = ("rms", "centroid", "bandwidth", "flatness", "rolloff")
ROLLOFF = 0.85  # fraction of the magnitude below the rolloff frequency
POWER_FLOOR = 1e-10  # |X|^2 floor in the flatness logs (librosa's amin): silence stays finite


class Descriptors(nn.Module):
    """[batch, n] audio -> [batch, len(names), n // hop] descriptor frames; see the module docstring.

    `measure` takes the signal already padded by `side` each side (a stream's history, in a
    streaming export); it and `forward` are TorchScript-compatible.
    """

    names: List[str]
    hop: torch.jit.Final[int]
    window: torch.jit.Final[int]
    side: torch.jit.Final[int]
    power_floor: torch.jit.Final[float]
    rolloff_fraction: torch.jit.Final[float]

    def __init__(self, names: Sequence[str], sample_rate: int, hop: int, window: int | None = None) -> None:
        super().__init__()
        check_descriptor_names(names)
        self.window = window or 2 * hop
        if hop < 1 or self.window < hop or (self.window - hop) % 2:
            raise ConfigError(f"descriptor window {self.window} with hop {hop}: expected a window of at least the "
                              f"hop, longer by an even number of samples (default: twice the hop)")
        self.names = list(names)
        self.hop = hop
        self.power_floor, self.rolloff_fraction = POWER_FLOOR, ROLLOFF  # module constants TorchScript can read
        self.side = (self.window - hop) // 2  # padding each side: the window is centred on the frame's hop
        self.register_buffer("hann", torch.hann_window(self.window), persistent=False)
        self.register_buffer("frequencies", torch.fft.rfftfreq(self.window, 1.0 / sample_rate), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.shape[-1] // self.hop
        return self.measure(nn.functional.pad(audio[..., : frames * self.hop], (self.side, self.side)))

    def measure(self, padded: torch.Tensor) -> torch.Tensor:
        """[batch, side + frames * hop + side] -> [batch, len(names), frames]."""
        frames = (padded.shape[-1] - 2 * self.side) // self.hop
        audio = padded[..., self.side : self.side + frames * self.hop]
        magnitude = torch.stft(padded, self.window, self.hop, window=self.hann, center=False,
                               return_complex=True).abs()[..., :frames]  # [batch, bins, frames]
        total = magnitude.sum(dim=1)
        tiny = 1e-30  # where total > 0 it is larger; this keeps the unused branch of the division finite
        centroid = torch.where(total > 0, (self.frequencies[:, None] * magnitude).sum(dim=1) / total.clamp_min(tiny),
                               0.0)
        values: List[torch.Tensor] = []
        for name in self.names:
            if name == "rms":
                values.append(audio.reshape(audio.shape[0], frames, self.hop).pow(2).mean(dim=-1).sqrt())
            elif name == "centroid":
                values.append(centroid)
            elif name == "bandwidth":
                spread = ((self.frequencies[:, None] - centroid[:, None, :]).pow(2) * magnitude).sum(dim=1)
                values.append(torch.where(total > 0, spread / total.clamp_min(tiny), 0.0).sqrt())
            elif name == "flatness":
                power = magnitude.pow(2).clamp_min(self.power_floor)
                values.append(power.log().mean(dim=1).exp() / power.mean(dim=1))
            else:  # rolloff
                cumulative = magnitude.cumsum(dim=1)
                below = (cumulative < self.rolloff_fraction * cumulative[:, -1:, :]).sum(dim=1)  # bins wholly below the threshold
                rolloff = self.frequencies[below.clamp_max(self.frequencies.shape[0] - 1)]
                values.append(torch.where(cumulative[:, -1, :] > 0, rolloff, 0.0))
        return torch.stack(values, dim=1)


def check_descriptor_names(names: Sequence[str]) -> None:
    """ConfigError naming the unknown ones and the valid set, unless `names` are one or more DESCRIPTORS."""
    unknown = [name for name in names if name not in DESCRIPTORS]
    if unknown or not names:
        raise ConfigError(f"descriptors {', '.join(map(str, unknown)) or '(none)'}: expected one or more of "
                          f"{', '.join(DESCRIPTORS)}, comma-separated (--set descriptors=rms,centroid)")
