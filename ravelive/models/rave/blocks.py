"""Layers the RAVE encoder and decoder are stacked from, on top of `ravelive.dsp.cached_conv`.

Every layer follows the cached-conv contract: built for the delay of the
stream it receives (`input_delay`, input frames), it reports the delay of
the stream it produces (`delay`, output frames), its rate change (`up`,
`down`) and its block rule (`block_multiple`), and `reset()` forgets the
stream. A stack passes `delay` of one layer as `input_delay` of the next.
"""

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d, CachedResidual


class SubpixelUpsample(nn.Module):
    """Upsample by `factor` as a transposed conv would: one conv at the low rate, `factor` phases interleaved.

    A CachedConv1d with `out_channels * factor` outputs and `kernel_size`
    low-rate frames computes every output phase at once; output frame
    t * factor + p of channel c is conv channel c * factor + p at frame t.
    With kernel 2 this has exactly the weights (and the cost) of RAVE's
    ConvTranspose1d(kernel 2 * factor, stride factor), without the
    transposed conv's overlap state: the cached conv's history is all the
    stream needs.
    """

    factor: torch.jit.Final[int]
    out_channels: torch.jit.Final[int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        factor: int,
        kernel_size: int,
        *,
        causal: bool = False,
        pre_activation: bool = True,
        streaming: bool = False,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        self.conv = CachedConv1d(
            in_channels, out_channels * factor, kernel_size, causal=causal, pre_activation=pre_activation,
            streaming=streaming, input_delay=input_delay, max_batch=max_batch,
        )
        self.factor = factor
        self.out_channels = out_channels
        self.input_delay = input_delay
        self.delay = self.conv.delay * factor  # a stream d low-rate frames late is d * factor frames late
        self.up, self.down, self.block_multiple = factor, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        batch, frames = y.shape[0], y.shape[-1]
        y = y.reshape(batch, self.out_channels, self.factor, frames)
        return y.transpose(2, 3).reshape(batch, self.out_channels, frames * self.factor)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


def residual_units(
    channels: int,
    kernel_size: int,
    dilations: tuple[int, ...],
    *,
    causal: bool,
    streaming: bool,
    input_delay: int,
    max_batch: int,
) -> list[nn.Module]:
    """RAVE v2's dilated residual units, one per dilation: x + conv1x1(act(conv_d(act(x))))."""
    units: list[nn.Module] = []
    for dilation in dilations:
        units.append(
            CachedResidual(
                channels, kernel_size, dilation=dilation, causal=causal, streaming=streaming,
                input_delay=units[-1].delay if units else input_delay, max_batch=max_batch,
            )
        )
    return units


def output_delay(layers: list[nn.Module], input_delay: int = 0) -> int:
    """Delay of the stream coming out of the layers built so far (`input_delay` before the first)."""
    return layers[-1].delay if layers else input_delay
