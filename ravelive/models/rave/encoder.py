"""RAVE v2's encoder (blocks.EncoderV2) on cached convolutions, PQMF analysis included.

    audio [b, 1, n]
    -> PQMF analysis                       bands channels, n / bands frames
    -> conv(2k + 1)                        capacity channels
    -> per stage i (ratio r, dilations ds):
         residual unit per d in ds         x + conv1x1(act(conv_k,d(act(x))))
         act -> conv(2r, stride r)         channels doubled, frames / r
    -> act -> conv(k)                      `latent_outputs` channels (2 * latent for a VAE: mean, scale)

Each layer is built for the delay of the stream before it, so `delay` (latent
frames) is the whole encoder's, PQMF included, computed layer by layer.
"""

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d, CachedSequential
from ravelive.dsp.pqmf import PQMFAnalysis
from ravelive.models.rave.blocks import output_delay, residual_units
from ravelive.models.rave.config import RaveConfig


class Encoder(nn.Module):
    """Audio [b, 1, n] -> raw latent [b, latent_outputs, n / ratio] (before the latent's mean / sample).

    `analysis` (audio -> bands) and `net` (bands -> raw latent) run one after the other; training
    calls them apart to keep the input bands for its multiband loss.
    """

    def __init__(
        self,
        config: RaveConfig,
        latent_outputs: int,
        *,
        streaming: bool = False,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """`input_delay`: samples by which the audio stream is late (an export's input resampler)."""
        super().__init__()
        common = dict(causal=config.causal, streaming=streaming, max_batch=max_batch)
        widths = config.widths
        self.analysis = PQMFAnalysis(
            config.bands, attenuation_db=config.pqmf_attenuation_db, streaming=streaming, input_delay=input_delay,
            max_batch=max_batch,
        )
        layers: list[nn.Module] = [
            CachedConv1d(
                config.bands, widths[0], 2 * config.kernel_size + 1, input_delay=self.analysis.delay, **common
            )
        ]
        for index, (ratio, dilations) in enumerate(zip(config.ratios, config.dilations)):
            layers += residual_units(
                widths[index], config.kernel_size, dilations, input_delay=output_delay(layers), **common
            )
            layers.append(
                CachedConv1d(
                    widths[index], widths[index + 1], 2 * ratio, stride=ratio, pre_activation=True,
                    input_delay=output_delay(layers), **common,
                )
            )
        layers.append(
            CachedConv1d(
                widths[-1], latent_outputs, config.kernel_size, pre_activation=True, input_delay=output_delay(layers),
                **common,
            )
        )
        self.net = CachedSequential(*layers)  # after the analysis: bands -> raw latent
        self.delay = self.net.delay  # latent frames
        self.block_multiple = self.net.block_multiple * config.bands  # samples

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.analysis(x))

    @torch.jit.export
    def reset(self) -> None:
        self.analysis.reset()
        self.net.reset()
