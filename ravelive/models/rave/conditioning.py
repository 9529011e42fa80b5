"""The descriptor input of a conditioned decoder: measured from audio, normalised with the corpus range.

A model with `RaveConfig.descriptors` decodes `[latent; descriptors]`: one
channel per descriptor (dsp/descriptors.py at hop = `ratio`, window =
2 * `ratio`, so descriptor frame k is latent frame k), each mapped from the
training corpus's [min, max] onto [-1, 1] (clamped outside it). The range is
a persistent buffer: training sets it once from the dataset
(`set_range`), checkpoints and exports carry it in the state_dict, and
`ravelive.json` states it.

Offline the signal is zero-padded half a window each side. Streaming, frame
k's window reaches half a frame past it, so the stream keeps `hop + side`
past samples and measures each frame one latent frame late; a delay line
then brings it to the encoder's delay (`delay`, latent frames), so
`forward` decodes each latent frame with the descriptors of the same audio.
"""

from typing import Any

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedDelay, _History
from ravelive.dsp.descriptors import Descriptors
from ravelive.errors import ConfigError
from ravelive.models.rave.config import RaveConfig

RANGE_FLOOR = 1e-8  # smallest max - min divided by: a corpus where a descriptor never moves maps it to -1


class DescriptorInput(nn.Module):
    """Audio [b, 1, n] -> normalised descriptors [b, len(config.descriptors), n // ratio] in [-1, 1]."""

    streaming: torch.jit.Final[bool]
    range_floor: torch.jit.Final[float]

    def __init__(
        self,
        config: RaveConfig,
        *,
        latent_delay: int,
        streaming: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """`latent_delay`: the encoder's delay in latent frames, which the streamed descriptors are aligned to."""
        super().__init__()
        self.measure = Descriptors(config.descriptors, config.sample_rate, config.ratio)
        self.names = config.descriptors
        count = len(config.descriptors)
        lookahead_frames = 1  # frame k's window ends `side` samples into frame k + 1
        if streaming and latent_delay < lookahead_frames:
            raise ConfigError(f"encoder delay {latent_delay} latent frames: a descriptor-conditioned stream needs at "
                              f"least {lookahead_frames} to measure each frame's window")
        self.streaming = streaming
        self.range_floor = RANGE_FLOOR
        self.past = _History(1, config.ratio + self.measure.side if streaming else 0, max_batch)
        self.align = CachedDelay(count, latent_delay - lookahead_frames if streaming else 0, streaming=streaming,
                                 max_batch=max_batch)
        self.delay = latent_delay if streaming else 0  # latent frames
        # [min; max] per descriptor, over the training corpus; persistent: checkpoints and exports carry it
        self.register_buffer("range", torch.stack([torch.zeros(count), torch.ones(count)]))

    def set_range(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """The corpus's per-descriptor minimum and maximum (training sets it once, before the first step)."""
        self.range.copy_(torch.stack([low, high]).to(self.range))

    def describe(self) -> dict[str, Any]:
        """The `descriptors` entry of ravelive.json: decode's extra inputs and how [-1, 1] maps onto each."""
        low, high = self.range.tolist()
        return {
            "names": list(self.names),  # decode's inputs after the latent, in this order
            "hop": self.measure.hop, "window": self.measure.window,  # samples at the training rate, Hann
            "min": dict(zip(self.names, low)), "max": dict(zip(self.names, high)),  # -1 and 1 of each input
            "follow": "forward measures them on its input",
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        audio = x[:, 0]
        if self.streaming:
            frames = audio.shape[-1] // self.measure.hop
            padded = self.past(audio[:, None])[:, 0, : frames * self.measure.hop + 2 * self.measure.side]
            values = self.align(self.measure.measure(padded))
        else:
            values = self.measure(audio)
        low, high = self.range[0][:, None], self.range[1][:, None]
        return (2 * (values - low) / (high - low).clamp_min(self.range_floor) - 1).clamp(-1.0, 1.0)

    @torch.jit.export
    def reset(self) -> None:
        self.past.reset()
        self.align.reset()
