"""The RAVE-family model: offline for training, streaming for export under the nn~ contract.

    model = RaveModel(resolve_config(["v2"]))             # offline: the training graph
    out = model.autoencode(audio)                          # Reconstruction: audio, bands, latent, regularization
    live = RaveModel(config, streaming=True); live.load_state_dict(model.state_dict())
    export_rave(config, "model.ts", state_dict=model.state_dict(), pca=fit.with_fidelity(0.95), sample_rate=88200)

The methods nn~ calls are RAVE's: `encode` audio [b, 1, n] -> latent
[b, latent, n / ratio] (the latent's deterministic value, e.g. the VAE
mean), `decode` latent -> audio, `forward` = decode(encode(x)); and, from
`LatentCodec`, `prior` (latents drawn from the N(0, 1) the regularizer pulls
the latent towards) and an output `gain` attribute. Streaming,
each comes `delay` samples late (`exported_methods[name].delay`), computed
layer by layer: encode = PQMF analysis + encoder, decode = decoder + PQMF
synthesis, forward = both. Blocks are multiples of `ratio` samples.

Export options, each its own module: a latent PCA (`latent_pca`: encode
gives the first `kept` principal axes, decode pads the rest and rotates
back), a declared rate a whole multiple of the training rate
(`dsp.fir_resample` before the encoder and after the decoder, their delay in
every method's), and `streaming=False` for the plain offline network (no
delay, marked in ravelive.json). The training graph uses none of them.
A trained prior (`prior=`, generation/prior_stream's TrainedPrior) becomes
the `prior` method, once its corpus's latent space is checked to be this
export's: `latent.digest` in ravelive.json is a sha256 of what encode and
decode depend on (rate and ratio, the trained weights, the kept PCA axes;
the fit is deterministic, latent_fit.py), so a corpus encoded by this file
and a later export of the same run, step and options share it, and any
other model differs.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedDelay
from ravelive.dsp.fir_resample import FIRDecimator, FIRInterpolator
from ravelive.errors import ConfigError
from ravelive.models.export import export_model
from ravelive.models.latent_codec import LatentCodec
from ravelive.models.rave.conditioning import DescriptorInput
from ravelive.models.rave.config import RaveConfig
from ravelive.models.rave.decoder import Decoder
from ravelive.models.rave.encoder import Encoder
from ravelive.models.rave.latent import LATENTS
from ravelive.models.rave.latent_pca import LatentPCA, LatentProjection


@dataclass
class Reconstruction:
    """What `RaveModel.autoencode` gives a training loss."""

    audio: torch.Tensor  # reconstruction [b, 1, n]
    bands: torch.Tensor  # the decoder's sub-bands [b, bands, n / bands] (RAVE's multiband loss)
    input_bands: torch.Tensor  # PQMF analysis of the input, same shape
    latent: torch.Tensor  # the sampled latent the decoder ran on [b, latent, n / ratio]
    regularization: torch.Tensor  # scalar: KL (vae) or MMD (wasserstein); the loss weighs it by beta
    descriptors: torch.Tensor | None = None  # a conditioned model's normalised descriptors of the input [b, d, n / ratio]


class RaveModel(LatentCodec):
    """PQMF + encoder + latent + decoder; `streaming=True` is the same network, cached, for export.

    Export options (the training graph leaves them at their defaults): `pca` rotates the latent onto
    its principal axes and keeps `pca.kept` dims (latent_pca.py); `sample_rate`, a whole multiple of
    the training rate, resamples inside the model (dsp/fir_resample.py), its delay in each method's.
    """

    __jit_ignored_attributes__ = LatentCodec.__jit_ignored_attributes__ + ["config"]
    __jit_unused_properties__ = ["delays"]
    training_ratio: torch.jit.Final[int]
    descriptor_count: torch.jit.Final[int]

    def __init__(
        self,
        config: RaveConfig = RaveConfig(),
        *,
        streaming: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
        pca: LatentPCA | None = None,
        sample_rate: int | None = None,
    ) -> None:
        factor = resampling_factor(config.sample_rate, sample_rate or config.sample_rate)
        kept = pca.kept if pca is not None else config.latent_dims  # encode's channels
        # the codec as nn~ sees it: the declared rate, latent frames per sample at that rate, the kept dims
        super().__init__(config.sample_rate * factor, config.ratio * factor, kept, streaming=streaming)
        self.config = config
        self.training_ratio = config.ratio  # samples per latent frame at the training rate
        self.latent = LATENTS[config.regularizer]()
        common = dict(streaming=streaming, max_batch=max_batch)
        self.input_resampler = _resampler(FIRDecimator, factor, 0, **common)
        raw_channels = self.latent.outputs(config.latent_dims)
        self.encoder = Encoder(config, raw_channels, input_delay=self.input_resampler.delay, **common)
        self.projection = LatentProjection(pca, config.latent_dims, input_delay=self.encoder.delay, **common)
        self.decoder = Decoder(config, **common)
        self.descriptor_count = len(config.descriptors)
        if config.descriptors and factor != 1:
            raise ConfigError(f"--samplerate {sample_rate}: a descriptor-conditioned model exports at its training rate "
                              f"({config.sample_rate} Hz) only; leave --samplerate out and let the host resample")
        # empty, or the descriptors decode reads next to the latent and forward measures on its input (conditioning.py)
        self.conditioning = nn.ModuleList(
            [DescriptorInput(config, latent_delay=self.encoder.delay, **common)] if config.descriptors else []
        )
        # forward's decoder output is later than decode's: its own resampler zeroes the frames before the signal
        forward_delay = self.encoder.delay * self.training_ratio + self.decoder.delay  # at the training rate
        self.output_resampler = _resampler(FIRInterpolator, factor, self.decoder.delay, **common)
        self.forward_resampler = _resampler(FIRInterpolator, factor, forward_delay, **common)
        live = int(streaming)  # an offline export has no stream, so no delay
        self.register_codec(encode_delay=self.encoder.delay * self.ratio * live,
                            decode_delay=self.output_resampler.delay * live,
                            forward_delay=self.forward_resampler.delay * live,
                            decode_controls=[f"(signal) descriptor: {name}" for name in config.descriptors])

    @property
    def delays(self) -> dict[str, int]:
        """Samples by which each streamed method lags its offline output."""
        return {name: method.delay for name, method in self.exported_methods.items()}

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio [b, 1, n] -> latent [b, kept, n // ratio] (deterministic: the VAE's mean, rotated if fitted)."""
        return self.projection.project(self.latent.deterministic(self.encoder(self.input_resampler(x))))

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [b, kept, m] -> audio [b, 1, m * ratio], times `gain`; a conditioned model's descriptors
        follow the latent."""
        if self.descriptor_count > 0:
            kept = z.shape[1] - self.descriptor_count
            restored = self.projection.restore(z[:, :kept])
            return self.output_resampler(self.decoder(torch.cat([restored, z[:, kept:]], 1))) * self.gain
        return self.output_resampler(self.decoder(self.projection.restore(z))) * self.gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)) times `gain`, on the same stream state as encode; one resampler, forward's own."""
        z = self.projection.restore(self.encode(x))
        for conditioning in self.conditioning:  # a conditioned model follows its input's own descriptors
            z = torch.cat([z, conditioning(x)], 1)
        if self.streaming:
            skipped = min(int(self.latent_skip), z.shape[-1])
            if skipped > 0:
                self.latent_skip.sub_(skipped)
                lead = torch.zeros(z.shape[0], 1, skipped * self.training_ratio, dtype=x.dtype, device=x.device)
                if skipped < z.shape[-1]:
                    lead = torch.cat([lead, self.decoder(z[:, :, skipped:])], -1)
                return self.forward_resampler(lead) * self.gain
        return self.forward_resampler(self.decoder(z)) * self.gain

    @torch.jit.unused
    def autoencode(self, x: torch.Tensor) -> Reconstruction:
        """Training pass (offline model): audio [b, 1, n], n a multiple of `ratio`."""
        if self.streaming:
            raise RuntimeError("autoencode is the training pass; build the model with streaming=False")
        input_bands = self.encoder.analysis(x)
        raw = self.encoder.net(input_bands)
        z, regularization = self.latent.sample(raw)
        if self.descriptor_count == 0:
            bands = self.decoder.decode_bands(z)
            return Reconstruction(self.decoder.synthesis(bands), bands, input_bands, z, regularization)
        descriptors = self.conditioning[0](x)
        bands = self.decoder.decode_bands(torch.cat([z, descriptors], 1))
        return Reconstruction(self.decoder.synthesis(bands), bands, input_bands, z, regularization, descriptors)

    @torch.jit.export
    def reset(self) -> None:
        stages = (self.input_resampler, self.encoder, self.projection, self.decoder, self.output_resampler,
                  self.forward_resampler)
        for stage in stages:
            stage.reset()
        for conditioning in self.conditioning:
            conditioning.reset()
        for trained in self.trained_prior:
            trained.reset()
        self.latent_skip.fill_(self.encoder.delay)


def count_parameters(model: nn.Module | RaveConfig) -> int:
    """Trainable parameters of `model`, or of the model a config builds (built without allocating memory)."""
    if isinstance(model, RaveConfig):
        with torch.device("meta"):
            model = RaveModel(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _resampler(kind: type[nn.Module], factor: int, input_delay: int, **common) -> nn.Module:
    """`kind` (FIRDecimator / FIRInterpolator) by `factor`, or a pass-through with the same contract at factor 1."""
    if factor == 1:
        return CachedDelay(1, 0, input_delay=input_delay, **common)
    return kind(factor, input_delay=input_delay, **common)


def resampling_factor(trained_rate: int, sample_rate: int) -> int:
    """How many times the training rate `sample_rate` is: the factor an export resamples by inside itself."""
    if sample_rate <= 0 or sample_rate % trained_rate:
        allowed = ", ".join(str(trained_rate * factor) for factor in range(1, 5))
        raise ConfigError(
            f"--samplerate {sample_rate}: the model was trained at {trained_rate} Hz and resamples inside itself only "
            f"by a whole factor; export at {allowed} ... Hz, or leave --samplerate out and let the host resample"
        )
    return sample_rate // trained_rate


class PriorEmbedding(Protocol):
    """A trained prior `export_rave` plays as the model's `prior` (generation.prior_stream.TrainedPrior)."""

    def check_latent_space(self, *, digest: str, sample_rate: int, ratio: int, dims: int, step: int | None) -> None:
        """ConfigError unless the model's latents are the ones the prior learnt."""

    def stream(self, max_batch: int) -> nn.Module:
        """The prior's streaming sampler: temperature [b, 1, m] -> latents [b, dims, m], with `reset()`."""

    def describe(self) -> dict[str, Any]:
        """Its `prior` entry in ravelive.json."""


def latent_digest(model: RaveModel, pca: LatentPCA | None) -> str:
    """sha256 of what `model`'s encode and decode depend on: its rate and ratio, its weights (a trained
    prior's aside) and the PCA axes it keeps (fixed buffers, outside the state_dict)."""
    digest = hashlib.sha256(f"{model.sr} {model.ratio}".encode())
    tensors = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("trained_prior.")}
    if pca is not None:
        tensors.update({"pca.mean": pca.mean, "pca.components": pca.components[: pca.kept]})
    for name, tensor in sorted(tensors.items()):
        digest.update(f"{name} {tensor.dtype} {list(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def describe_latent(model: RaveModel, pca: LatentPCA | None, fidelity: float | None) -> dict[str, Any]:
    """The `latent` entry of a RAVE export's ravelive.json: what encode gives, how it was chosen, its digest."""
    described: dict[str, Any] = {
        "dims": model.config.latent_dims,  # the decoder's latent
        "kept": model.projection.kept,  # encode's output channels, decode's input channels
        "pca": pca is not None,  # rotated onto principal axes, centred; dropped axes decoded at their mean
        "digest": latent_digest(model, pca),  # what a latent corpus records of its model, for `export --prior`
    }
    if pca is not None:
        described.update(fidelity=fidelity, fidelity_curve=list(pca.fidelity), kept_fidelity=pca.fidelity[pca.kept - 1],
                         examples=pca.examples, padding="zeros")
    return described


def export_rave(
    config: RaveConfig,
    path: str | Path,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    pca: LatentPCA | None = None,
    fidelity: float | None = None,
    sample_rate: int | None = None,
    streaming: bool = True,
    training: Mapping[str, Any] | None = None,
    prior: PriorEmbedding | None = None,
    seed: int = 0,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
    """Export a model (weights `state_dict`, or a fresh initialisation from `seed`) to `path`, verified.

    `pca` (its `kept` dims chosen for `fidelity`, recorded in the file), `sample_rate` and `streaming`
    are RaveModel's export options; `streaming=False` writes the offline network (no cached state).
    `training` (e.g. the step and training config of `state_dict`) is stored in the file's `ravelive.json`.
    `prior` becomes the `prior` method (its stream state reset with the model's), once it accepts the
    latent space (ConfigError before anything is written); ravelive.json's `prior` entry describes it.
    """
    options = dict(pca=pca, sample_rate=sample_rate)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RaveModel(config, streaming=streaming, max_batch=max_batch, **options)
    if state_dict is not None:
        model.load_weights(state_dict)
    offline = RaveModel(config, **options)
    offline.load_state_dict(model.state_dict())
    extras = {"training_sample_rate": config.sample_rate, "latent": describe_latent(model, pca, fidelity)}
    if training is not None:
        extras["training"] = dict(training)
    for conditioning in model.conditioning:
        extras["descriptors"] = conditioning.describe()
    if prior is not None:  # after the offline copy: only the streamed file plays it, nothing compares it
        prior.check_latent_space(digest=extras["latent"]["digest"], sample_rate=model.sr, ratio=model.ratio,
                                 dims=model.latent_dims, step=(training or {}).get("step"))
        model.embed_prior(prior.stream(max_batch))
        extras["prior"] = prior.describe()
    return export_model(
        model, path, offline=offline.eval(), config=config.to_dict(), streaming=streaming, extras=extras, seed=seed
    )
