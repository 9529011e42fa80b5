"""A small streaming conv autoencoder: test fixtures, and the benchmarks' RAVE-v2-shaped stand-in.

Laid out like a RAVE streaming export (`LatentCodec`): `encode` audio
[1, 1, latent, ratio], `decode` latents [latent, ratio, 1, 1], `forward` =
decode(encode(x)), a `prior` that draws latents, and a float attribute `gain`. Built from the
cached convolutions of `ravelive.dsp.cached_conv`, so every method knows its
delay and streams to exactly its offline output that many samples late.

    encoder: per stride s: conv(kernel 2s, stride s) -> residual unit; conv -> latent
    decoder: conv <- latent; per stride s (reversed): nearest x s -> conv -> residual unit
             (the last stage upsamples straight to one audio channel)

Stage i of the encoder (and the mirrored decoder stage) is `stage_channels[i]`
wide; by default every stage is `channels` wide. RAVE v2 grows the width as
the rate falls (96 x 1, 2, 4, 8, 16 after a 16-band split): most parameters
sit in the slow, deep layers, so 30 M parameters cost far less than 30 M at
the audio rate.
"""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ravelive.dsp.cached_conv import (
    DEFAULT_MAX_BATCH,
    CachedConv1d,
    CachedResidual,
    CachedSequential,
    CachedUpsample,
)
from ravelive.errors import ConfigError
from ravelive.models.export import export_model
from ravelive.models.latent_codec import LatentCodec


@dataclass(frozen=True)
class AutoencoderConfig:
    """Hyper-parameters of StreamingAutoencoder; stored in every exported file."""

    sample_rate: int = 48000  # native audio rate of the model
    strides: tuple[int, ...] = (8, 4, 4, 4)  # downsampling per encoder stage; their product is the ratio
    channels: int = 32  # width of every hidden layer unless stage_channels is given (cost grows with its square)
    stage_channels: tuple[int, ...] | None = None  # width per stride, encoder order (the decoder mirrors it); None: channels
    latent_dims: int = 8  # latent channels of encode / decode / prior
    residual_kernel: int = 3  # kernel of the conv inside each stage's residual unit
    causal: bool = True  # True: no look-ahead, zero delay; False: centred kernels, look-ahead becomes delay
    max_gain: float = 4.0  # set_gain refuses values outside [0, max_gain]

    def __post_init__(self) -> None:
        if not self.strides or any(not isinstance(s, int) or s < 1 for s in self.strides):
            raise ConfigError(f"strides {self.strides!r}: expected a non-empty tuple of positive integers like (8, 4, 4)")
        for name in ("sample_rate", "channels", "latent_dims", "residual_kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} = {value!r}: expected a positive integer")
        if not self.max_gain > 0:
            raise ConfigError(f"max_gain = {self.max_gain!r}: expected a positive number")
        if self.stage_channels is not None:
            widths = tuple(self.stage_channels)  # a list from TOML or JSON becomes the tuple the dataclass declares
            if len(widths) != len(self.strides) or any(not isinstance(w, int) or w < 1 for w in widths):
                raise ConfigError(
                    f"stage_channels {self.stage_channels!r}: expected one positive integer per stride "
                    f"({len(self.strides)} for strides {self.strides}), or None for `channels` everywhere"
                )
            object.__setattr__(self, "stage_channels", widths)

    @property
    def ratio(self) -> int:
        """Audio samples per latent frame (the total stride)."""
        return math.prod(self.strides)

    @property
    def widths(self) -> tuple[int, ...]:
        """Width of each encoder stage (the decoder's stages mirror them)."""
        return self.stage_channels or (self.channels,) * len(self.strides)

    def to_dict(self) -> dict:
        """JSON-ready form (stored in the export's ravelive.json); an unset stage_channels is left out,
        so files exported before the field existed still describe their config exactly."""
        values = asdict(self)
        if self.stage_channels is None:
            del values["stage_channels"]
        return values


class StreamingAutoencoder(LatentCodec):
    """Conv autoencoder under the nn~ contract; `streaming=False` is the same network for training."""

    __jit_ignored_attributes__ = LatentCodec.__jit_ignored_attributes__ + ["config"]

    def __init__(
        self, config: AutoencoderConfig = AutoencoderConfig(), *, streaming: bool = True, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        super().__init__(config.sample_rate, config.ratio, config.latent_dims, streaming=streaming,
                         max_gain=config.max_gain)
        self.config = config
        self.encoder = _build_encoder(config, streaming, max_batch)
        self.decoder = _build_decoder(config, streaming, max_batch)
        self.register_codec()

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio [batch, 1, n] -> latents [batch, latent_dims, n // ratio]."""
        return self.encoder(x)


def export_autoencoder(
    config: AutoencoderConfig,
    path: str | Path,
    *,
    seed: int = 0,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
    """Export an autoencoder (weights `state_dict`, or a fresh initialisation from `seed`) to `path`, verified."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = StreamingAutoencoder(config, max_batch=max_batch)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    offline = StreamingAutoencoder(config, streaming=False)
    offline.load_state_dict(model.state_dict())
    return export_model(model, path, offline=offline.eval(), config=config.to_dict(), seed=seed)


def _build_encoder(config: AutoencoderConfig, streaming: bool, max_batch: int) -> CachedSequential:
    common = dict(causal=config.causal, streaming=streaming, max_batch=max_batch)
    widths, layers = config.widths, []
    for index, stride in enumerate(config.strides):
        layers.append(
            CachedConv1d(
                1 if index == 0 else widths[index - 1], widths[index], 2 * stride, stride=stride,
                pre_activation=index > 0, input_delay=_delay(layers), **common,
            )
        )
        layers.append(CachedResidual(widths[index], config.residual_kernel, input_delay=_delay(layers), **common))
    layers.append(
        CachedConv1d(widths[-1], config.latent_dims, 3, pre_activation=True, input_delay=_delay(layers), **common)
    )
    return CachedSequential(*layers)


def _build_decoder(config: AutoencoderConfig, streaming: bool, max_batch: int) -> CachedSequential:
    common = dict(causal=config.causal, streaming=streaming, max_batch=max_batch)
    widths = config.widths
    layers = [CachedConv1d(config.latent_dims, widths[-1], 3, **common)]
    for index in reversed(range(1, len(config.strides))):
        stride = config.strides[index]
        layers.append(
            CachedUpsample(
                widths[index], widths[index - 1], stride, 2 * stride + 1, pre_activation=True,
                input_delay=_delay(layers), **common,
            )
        )
        layers.append(CachedResidual(widths[index - 1], config.residual_kernel, input_delay=_delay(layers), **common))
    first = config.strides[0]
    layers.append(
        CachedUpsample(widths[0], 1, first, 2 * first + 1, pre_activation=True, input_delay=_delay(layers), **common)
    )
    return CachedSequential(*layers)


def _delay(layers: list) -> int:
    """Delay (frames) of the stream coming out of the layers built so far."""
    return layers[-1].delay if layers else 0
