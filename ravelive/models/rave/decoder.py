"""RAVE v2's decoder (blocks.GeneratorV2) on cached convolutions, noise and PQMF synthesis included.

    latent [b, latent, m]
    -> conv(k)                                   capacity * 2**stages channels
    -> per stage, last first (ratio r, dilations ds):
         act -> upsample x r (SubpixelUpsample)  channels halved, frames * r
         residual unit per d in ds
    = hidden h                                   capacity channels, band rate
    -> act -> conv(2k + 1) -> wave, amplitude    bands channels each
       bands = tanh(wave * sigmoid(amplitude))   (RAVE v2's amplitude modulation)
       + NoiseGenerator(h)                       optional, aligned with the wave path
    -> PQMF synthesis                            audio [b, 1, m * ratio]

The wave and noise paths start from the same hidden stream but have
different delays; the earlier one goes through a delay line so both reach
the sum equally late (the stream then lags by the larger delay). `delay`
is the whole decoder's, in samples, for a latent stream that starts on time.
"""

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d, CachedDelay, CachedSequential
from ravelive.dsp.pqmf import PQMFSynthesis
from ravelive.models.rave.blocks import SubpixelUpsample, output_delay, residual_units
from ravelive.models.rave.config import RaveConfig
from ravelive.models.rave.noise import NoiseGenerator


class Decoder(nn.Module):
    """Latent [b, latent, m] -> audio [b, 1, m * ratio]; `decode_bands` stops before the PQMF synthesis."""

    bands: torch.jit.Final[int]
    noise_enabled: bool

    def __init__(self, config: RaveConfig, *, streaming: bool = False, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__()
        common = dict(causal=config.causal, streaming=streaming, max_batch=max_batch)
        widths = config.widths
        inputs = config.latent_dims + len(config.descriptors)  # a conditioned decoder reads [latent; descriptors]
        layers: list[nn.Module] = [CachedConv1d(inputs, widths[-1], config.kernel_size, **common)]
        for index in reversed(range(len(config.ratios))):
            layers.append(
                SubpixelUpsample(
                    widths[index + 1], widths[index], config.ratios[index], config.upsample_kernel,
                    input_delay=output_delay(layers), **common,
                )
            )
            layers += residual_units(
                widths[index], config.kernel_size, config.dilations[index], input_delay=output_delay(layers), **common
            )
        self.body = CachedSequential(*layers)
        hidden_delay = self.body.delay  # band frames

        self.wave = CachedConv1d(
            widths[0], 2 * config.bands, 2 * config.kernel_size + 1, pre_activation=True, input_delay=hidden_delay,
            **common,
        )
        noise = []
        if config.use_noise:
            noise.append(
                NoiseGenerator(
                    widths[0], config.bands, config.noise_ratios, config.noise_hidden, input_delay=hidden_delay,
                    delay_at_least=self.wave.delay, **common,
                )
            )
        self.noise = nn.ModuleList(noise)  # empty or one generator: TorchScript iterates it either way
        band_delay = noise[0].delay if noise else self.wave.delay
        self.wave_align = CachedDelay(
            2 * config.bands, band_delay - self.wave.delay, input_delay=self.wave.delay,
            streaming=streaming, max_batch=max_batch,
        )
        self.synthesis = PQMFSynthesis(
            config.bands, attenuation_db=config.pqmf_attenuation_db, streaming=streaming,
            input_delay=band_delay, max_batch=max_batch,
        )
        self.bands = config.bands
        self.noise_enabled = config.use_noise  # a training schedule may keep it off at first
        self.band_delay = band_delay  # band frames
        self.delay = self.synthesis.delay  # samples

    @torch.jit.export
    def decode_bands(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [b, latent, m] -> sub-bands [b, bands, m * prod(ratios)], in [-1, 1] plus noise."""
        h = self.body(z)
        wave, amplitude = self.wave_align(self.wave(h)).split(self.bands, 1)
        bands = torch.tanh(wave * torch.sigmoid(amplitude))
        for generator in self.noise:
            noise = generator(h)  # run even when disabled: the noise stream's state keeps pace
            if self.noise_enabled:
                bands = bands + noise
        return bands

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.decode_bands(z))

    @torch.jit.export
    def reset(self) -> None:
        self.body.reset()
        self.wave.reset()
        self.wave_align.reset()
        for generator in self.noise:
            generator.reset()
        self.synthesis.reset()
