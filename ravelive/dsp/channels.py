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
    """Stream audio [stream_channels, B] -> the method's input tensor [1, in_channels, B // in_ratio].

    The tensors are preallocated by torch (aligned for its kernels) and used
    in turn, two of them: a model may keep a reference to its previous input
    while it processes the next one (nn~ hands it fresh memory each call).
    Allocating a fresh tensor per block instead measurably slows small
    models (~5% of a 1 ms block), hence the pair.
    """

    def __init__(self, spec: MethodSpec, stream_channels: int, block: int) -> None:
        self.spec = spec
        self.block = block
        self._map = ChannelMap(stream_channels, spec.in_channels)
        self._tensors = [torch.zeros(spec.input_shape(block)) for _ in range(2)]
        self._next = 0

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        ratio = self.spec.in_ratio
        tensor = self._tensors[self._next]
        self._next ^= 1
        self._map.apply(audio[:, ratio - 1 :: ratio], tensor.numpy()[0])
        return tensor


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
            step = out.strides[1]  # out may be a column slice of a wider array: view it, never reshape (a copy)
            held = np.lib.stride_tricks.as_strided(
                out, (out.shape[0], self.block // ratio, ratio), (out.strides[0], step * ratio, step)
            )
            self._map.apply(values[:, :, None], held)
