"""Stream channels <-> method channels, and control rate <-> audio rate.

Channel rule (`ChannelMap`), the same in both directions:
- as many channels on both sides: one to one;
- one target channel from several sources: their mean (a stereo stream into
  a mono model is mixed down);
- otherwise target channel i takes source channel i modulo the source count
  (a mono source is duplicated; extra sources are dropped; a stereo stream
  into a 4-input method feeds L R L R).

Rates (`InputAdapter`, `OutputAdapter`), per model block of B samples:
- an input at in_ratio > 1 is a control-rate signal: the method gets the
  last sample of each group of in_ratio samples (what nn~ does: the newest
  value, no added delay), B // in_ratio values per block;
- an output at out_ratio > 1 is held: each value repeats for out_ratio
  samples (nn~ does the same), so a block of B samples comes back.
"""

import numpy as np
import torch

from ravelive.models.nn_model import MethodSpec


class ChannelMap:
    """Maps [source, ...] onto [target, ...] by the rule in the module docstring."""

    def __init__(self, source: int, target: int) -> None:
        self.source = source
        self.target = target
        self._mix_down = target == 1 and source > 1

    def apply(self, x: np.ndarray, out: np.ndarray) -> None:
        """Write the mapping of x [source, ...] into out [target, ...]; trailing axes broadcast."""
        if self._mix_down:
            out[0] = x.mean(axis=0)
        elif self.source == self.target:
            out[...] = x
        else:
            for channel in range(self.target):
                out[channel] = x[channel % self.source]


class InputAdapter:
    """Stream audio [stream_channels, B] -> the method's input tensor [1, in_channels, B // in_ratio]."""

    def __init__(self, spec: MethodSpec, stream_channels: int, block: int) -> None:
        self.spec = spec
        self.block = block
        self._map = ChannelMap(stream_channels, spec.in_channels)

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        """A fresh tensor (a model may keep a reference to its input, so buffers are never reused)."""
        ratio = self.spec.in_ratio
        frames = np.empty(self.spec.input_shape(self.block), dtype=np.float32)
        self._map.apply(audio[:, ratio - 1 :: ratio], frames[0])
        return torch.from_numpy(frames)


class OutputAdapter:
    """The method's output tensor [1, out_channels, B // out_ratio] -> stream audio [stream_channels, B]."""

    def __init__(self, spec: MethodSpec, stream_channels: int, block: int) -> None:
        self.spec = spec
        self.block = block
        self._map = ChannelMap(spec.out_channels, stream_channels)

    def __call__(self, y: torch.Tensor, out: np.ndarray) -> None:
        """Write y, held up to audio rate and mapped to the stream's channels, into out [stream_channels, B]."""
        ratio = self.spec.out_ratio
        values = y[0].numpy()
        if ratio == 1:
            self._map.apply(values, out)
        else:
            held = out.reshape(out.shape[0], self.block // ratio, ratio)
            self._map.apply(values[:, :, None], held)
