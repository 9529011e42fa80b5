"""The RAVE-family model: offline for training, streaming for export under the nn~ contract.

    model = RaveModel(resolve_config(["v2"]))             # offline: the training graph
    out = model.autoencode(audio)                          # Reconstruction: audio, bands, latent, regularization
    live = RaveModel(config, streaming=True); live.load_state_dict(model.state_dict())
    export_rave(config, "model.ts", state_dict=model.state_dict())

The methods nn~ calls are RAVE's: `encode` audio [b, 1, n] -> latent
[b, latent, n / ratio] (the latent's deterministic value, e.g. the VAE
mean), `decode` latent -> audio, `forward` = decode(encode(x)). Streaming,
each comes `delay` samples late (`exported_methods[name].delay`), computed
layer by layer: encode = PQMF analysis + encoder, decode = decoder + PQMF
synthesis, forward = both. Blocks are multiples of `ratio` samples.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import List

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH
from ravelive.models.export import ContractModule, export_model
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


class RaveModel(ContractModule):
    """PQMF + encoder + latent + decoder; `streaming=True` is the same network, cached, for export."""

    __jit_ignored_attributes__ = ContractModule.__jit_ignored_attributes__ + ["config"]
    __jit_unused_properties__ = ["delays"]
    _attributes: List[str]  # TorchScript reads only this class's annotations; an empty list needs its type here
    streaming: torch.jit.Final[bool]
    ratio: torch.jit.Final[int]
    latent_dims: torch.jit.Final[int]

    def __init__(
        self, config: RaveConfig = RaveConfig(), *, streaming: bool = False, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        super().__init__(config.sample_rate)
        self.config = config
        self.streaming = streaming
        self.ratio = config.ratio
        self.latent_dims = config.latent_dims
        self.latent = LATENTS[config.regularizer]()
        raw_channels = self.latent.outputs(config.latent_dims)
        self.encoder = Encoder(config, raw_channels, streaming=streaming, max_batch=max_batch)
        self.decoder = Decoder(config, streaming=streaming, max_batch=max_batch)
        # latent frames of a fresh stream that precede the signal; forward keeps them from the decoder
        self.register_buffer("latent_skip", torch.tensor(self.encoder.delay), persistent=False)

        audio, latents = ["(signal) audio"], [f"(signal) latent {i}" for i in range(self.latent_dims)]
        encode_delay = self.encoder.delay * self.ratio
        self.register_method("encode", [1, 1, self.latent_dims, self.ratio], audio, latents, delay=encode_delay)
        self.register_method(
            "decode", [self.latent_dims, self.ratio, 1, 1], latents, audio, delay=self.decoder.delay
        )
        self.register_method(
            "forward", [1, 1, 1, 1], audio, audio, delay=encode_delay + self.decoder.delay, block_multiple=self.ratio
        )

    @property
    def delays(self) -> dict[str, int]:
        """Samples by which each streamed method lags its offline output."""
        return {name: method.delay for name, method in self.exported_methods.items()}

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio [b, 1, n] -> latent [b, latent_dims, n // ratio] (deterministic: the VAE's mean)."""
        return self.latent.deterministic(self.encoder(x))

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [b, latent_dims, m] -> audio [b, 1, m * ratio]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)), on the same stream state as encode and decode."""
        z = self.encode(x)
        if self.streaming:
            skipped = min(int(self.latent_skip), z.shape[-1])
            if skipped > 0:
                self.latent_skip.sub_(skipped)
                lead = torch.zeros(z.shape[0], 1, skipped * self.ratio, dtype=x.dtype, device=x.device)
                if skipped == z.shape[-1]:
                    return lead
                return torch.cat([lead, self.decode(z[:, :, skipped:])], -1)
        return self.decode(z)

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

    @torch.jit.export
    def reset(self) -> None:
        self.encoder.reset()
        self.decoder.reset()
        self.latent_skip.fill_(self.encoder.delay)


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
    seed: int = 0,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
    """Export a streaming model (weights `state_dict`, or a fresh initialisation from `seed`) to `path`, verified."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RaveModel(config, streaming=True, max_batch=max_batch)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    offline = RaveModel(config)
    offline.load_state_dict(model.state_dict())
    return export_model(model, path, offline=offline.eval(), config=config.to_dict(), seed=seed)
