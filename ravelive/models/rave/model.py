"""The RAVE-family model: offline for training, streaming for export under the nn~ contract.

    model = RaveModel(resolve_config(["v2"]))             # offline: the training graph
    out = model.autoencode(audio)                          # Reconstruction: audio, bands, latent, regularization
    live = RaveModel(config, streaming=True); live.load_state_dict(model.state_dict())
    export_rave(config, "model.ts", state_dict=model.state_dict())

The methods nn~ calls are RAVE's: `encode` audio [b, 1, n] -> latent
[b, latent, n / ratio] (the latent's deterministic value, e.g. the VAE
mean), `decode` latent -> audio, `forward` = decode(encode(x)); and, from
`LatentCodec`, `prior` (latents drawn from the N(0, 1) the regularizer pulls
the latent towards) and an output `gain` attribute. Streaming,
each comes `delay` samples late (`exported_methods[name].delay`), computed
layer by layer: encode = PQMF analysis + encoder, decode = decoder + PQMF
synthesis, forward = both. Blocks are multiples of `ratio` samples.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH
from ravelive.models.export import export_model
from ravelive.models.latent_codec import LatentCodec
from ravelive.models.rave.config import RaveConfig
from ravelive.models.rave.decoder import Decoder
from ravelive.models.rave.encoder import Encoder
from ravelive.models.rave.latent import LATENTS


@dataclass
class Reconstruction:
    """What `RaveModel.autoencode` gives a training loss."""

    audio: torch.Tensor  # reconstruction [b, 1, n]
    bands: torch.Tensor  # the decoder's sub-bands [b, bands, n / bands] (RAVE's multiband loss)
    input_bands: torch.Tensor  # PQMF analysis of the input, same shape
    latent: torch.Tensor  # the sampled latent the decoder ran on [b, latent, n / ratio]
    regularization: torch.Tensor  # scalar: KL (vae) or MMD (wasserstein); the loss weighs it by beta


class RaveModel(LatentCodec):
    """PQMF + encoder + latent + decoder; `streaming=True` is the same network, cached, for export."""

    __jit_ignored_attributes__ = LatentCodec.__jit_ignored_attributes__ + ["config"]
    __jit_unused_properties__ = ["delays"]

    def __init__(
        self, config: RaveConfig = RaveConfig(), *, streaming: bool = False, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        super().__init__(config.sample_rate, config.ratio, config.latent_dims, streaming=streaming)
        self.config = config
        self.latent = LATENTS[config.regularizer]()
        raw_channels = self.latent.outputs(config.latent_dims)
        self.encoder = Encoder(config, raw_channels, streaming=streaming, max_batch=max_batch)
        self.decoder = Decoder(config, streaming=streaming, max_batch=max_batch)
        self.register_codec()

    @property
    def delays(self) -> dict[str, int]:
        """Samples by which each streamed method lags its offline output."""
        return {name: method.delay for name, method in self.exported_methods.items()}

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio [b, 1, n] -> latent [b, latent_dims, n // ratio] (deterministic: the VAE's mean)."""
        return self.latent.deterministic(self.encoder(x))

    @torch.jit.unused
    def autoencode(self, x: torch.Tensor) -> Reconstruction:
        """Training pass (offline model): audio [b, 1, n], n a multiple of `ratio`."""
        if self.streaming:
            raise RuntimeError("autoencode is the training pass; build the model with streaming=False")
        input_bands = self.encoder.analysis(x)
        raw = self.encoder.net(input_bands)
        z, regularization = self.latent.sample(raw)
        bands = self.decoder.decode_bands(z)
        return Reconstruction(self.decoder.synthesis(bands), bands, input_bands, z, regularization)


def count_parameters(model: nn.Module | RaveConfig) -> int:
    """Trainable parameters of `model`, or of the model a config builds (built without allocating memory)."""
    if isinstance(model, RaveConfig):
        with torch.device("meta"):
            model = RaveModel(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def export_rave(
    config: RaveConfig,
    path: str | Path,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    training: Mapping[str, Any] | None = None,
    seed: int = 0,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
    """Export a streaming model (weights `state_dict`, or a fresh initialisation from `seed`) to `path`, verified.

    `training` (e.g. the step and training config of `state_dict`) is stored in the file's `ravelive.json`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RaveModel(config, streaming=True, max_batch=max_batch)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    offline = RaveModel(config)
    offline.load_state_dict(model.state_dict())
    return export_model(model, path, offline=offline.eval(), config=config.to_dict(), training=training, seed=seed)
