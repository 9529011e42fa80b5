"""Resampling by a whole factor inside a model: streamable FIR decimation and interpolation in torch.

An exported model may declare a rate `factor` times the rate it was trained
at (a 24 kHz model played at 48 kHz): its input is decimated by `factor`
before the encoder and its output interpolated by `factor` after the decoder,
inside the TorchScript file, as RAVE's `export --sr` does. Both halves are
the linear-phase Kaiser-windowed sinc of `dsp.polyphase.design` (flat to
PASSBAND of the lower Nyquist, ATTENUATION_DB down beyond it), laid out as
cached convolutions, so they follow the contract of `ravelive.dsp.cached_conv`
(offline or streaming by constructor argument, `delay`, `input_delay`,
`up` / `down`, `block_multiple`, `reset()`):

- `FIRDecimator`: [b, 1, n] -> [b, 1, n / factor], one strided conv centred
  on each output frame (output frame q is the band-limited input at q * factor);
- `FIRInterpolator`: [b, 1, m] -> [b, 1, m * factor], polyphase: a stride-1
  conv at the low rate gives the `factor` output phases, which are interleaved
  (output frame q * factor + j is the input at time q + j / factor).

The filters are fixed and recomputed at construction; they are buffers
outside `state_dict()`, so a training checkpoint loads into a model exported
at any rate.
"""

import numpy as np
import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, fixed_conv
from ravelive.dsp.polyphase import design


def _filter(taps: np.ndarray) -> torch.Tensor:
    """Phases [out, kernel] as a conv weight [out, 1, kernel]."""
    return torch.from_numpy(taps[:, None, :].copy())


class FIRDecimator(nn.Module):
    """[b, 1, n] -> [b, 1, n / factor], anti-aliased; `input_delay` in input frames, `delay` in output frames."""

    def __init__(
        self, factor: int, *, streaming: bool = False, input_delay: int = 0, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        super().__init__()
        table = design(factor, 1)[-1]  # one phase, symmetric: inputs q * factor - half ... q * factor + half
        self.conv = fixed_conv(_filter(table), stride=factor, streaming=streaming, input_delay=input_delay,
                               max_batch=max_batch)
        self.input_delay = input_delay
        self.delay = self.conv.delay
        self.up, self.down, self.block_multiple = 1, factor, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


class FIRInterpolator(nn.Module):
    """[b, 1, m] -> [b, 1, m * factor], image-free; `input_delay` in input frames, `delay` in output frames."""

    factor: torch.jit.Final[int]

    def __init__(
        self, factor: int, *, streaming: bool = False, input_delay: int = 0, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        super().__init__()
        _, _, _, first, table = design(1, factor)  # phase j weighs inputs q + first + t for output q * factor + j
        # Centre the window on the current frame, as CachedConv1d's non-causal kernels are: pad the
        # shorter side with zero taps so the kernel reaches `reach` frames back and forward.
        last = first + table.shape[-1] - 1
        reach = max(-first, last)
        taps = np.zeros((factor, 2 * reach + 1))
        taps[:, reach + first : reach + last + 1] = table
        self.conv = fixed_conv(_filter(taps), streaming=streaming, input_delay=input_delay, max_batch=max_batch)
        self.factor = factor
        self.input_delay = input_delay
        self.delay = self.conv.delay * factor
        self.up, self.down, self.block_multiple = factor, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.conv(x)  # [b, phase, frame]
        return phases.transpose(1, 2).reshape(x.shape[0], 1, -1)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()
