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

These run once per model block, right after the model has pushed the
interpreter's code and data out of the CPU caches, where every Python call
and numpy call costs several microseconds (see benchmarks/overhead.py). So
the common case (equal channels, audio rate) is a single `np.copyto` on
arrays prepared once, with no Python frame of our own in between.
"""

import numpy as np
import torch

from ravelive.models.nn_model import MethodSpec


class ChannelMap:
    """Maps [source, ...] onto [target, ...] by the rule in the module docstring.

    `write(out, x)` writes the mapping of x [source, ...] into out [target, ...]
    (trailing axes broadcast, leading axes of size 1 in x are dropped, as in
    `np.copyto`, which is what `write` is for equal counts).
    """

    def __init__(self, source: int, target: int) -> None:
        self.source = source
        self.target = target
        if source == target:
            self.write = np.copyto
        elif target == 1:
            self.write = self._mix_down
        else:
            self.write = self._spread

    @staticmethod
    def _mix_down(out: np.ndarray, x: np.ndarray) -> None:
        out[0] = _drop_leading(x, out).mean(axis=0)

    def _spread(self, out: np.ndarray, x: np.ndarray) -> None:
        x = _drop_leading(x, out)
        for channel in range(self.target):
            out[channel] = x[channel % self.source]


class InputAdapter:
    """Stream audio [stream_channels, B] -> the method's input tensor [1, in_channels, B // in_ratio].

    The tensors are preallocated by torch and used in turn, two of them: a
    model may keep a reference to its previous input while it processes the
    next one (nn~ hands it fresh memory each call).
    """

    def __init__(self, spec: MethodSpec, stream_channels: int, block: int) -> None:
        self.spec = spec
        self.block = block
        self._write = ChannelMap(stream_channels, spec.in_channels).write
        self._tensors = [torch.zeros(spec.input_shape(block)) for _ in range(2)]
        self._arrays = [tensor.numpy()[0] for tensor in self._tensors]  # numpy views, made once
        self._pick = slice(spec.in_ratio - 1, None, spec.in_ratio) if spec.in_ratio > 1 else slice(None)
        self._next = 0

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        index = self._next
        self._next = 1 - index
        self._write(self._arrays[index], audio[:, self._pick])
        return self._tensors[index]


class OutputAdapter:
    """The method's output tensor [1, out_channels, B // out_ratio] -> stream audio [stream_channels, B]."""

    def __init__(self, spec: MethodSpec, stream_channels: int, block: int) -> None:
        self.spec = spec
        self.block = block
        self._write = ChannelMap(spec.out_channels, stream_channels).write

    def __call__(self, y: torch.Tensor, out: np.ndarray) -> None:
        """Write y, held up to audio rate and mapped to the stream's channels, into out [stream_channels, B]."""
        ratio = self.spec.out_ratio
        if ratio == 1:
            self._write(out, y.numpy())
            return
        step = out.strides[1]  # out may be a column slice of a wider array: view it, never reshape (a copy)
        held = np.lib.stride_tricks.as_strided(
            out, (out.shape[0], self.block // ratio, ratio), (out.strides[0], step * ratio, step)
        )
        self._write(held, y.numpy()[0, :, :, None])


def _drop_leading(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """x without the leading axes of size 1 it has beyond out's rank (a model output's batch axis)."""
    return x.reshape(x.shape[x.ndim - out.ndim :])
