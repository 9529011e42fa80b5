"""The nn~ layout both of ravelive's autoencoders export: encode, decode, forward, prior and an output gain.

    class MyCodec(LatentCodec):
        def __init__(self, ...):
            super().__init__(sample_rate, ratio, latent_dims, streaming=streaming)
            self.encoder, self.decoder = ...     # cached-conv stacks: .delay, .reset()
            self.register_codec()

        @torch.jit.export
        def encode(self, x): ...                 # audio [b, 1, n] -> latent [b, latent_dims, n / ratio]

What it adds to a subclass's `encode` and its `decoder`:

- `decode(z)`: the decoder's audio times the `gain` attribute (a float in
  [0, max_gain]; `set_gain` refuses anything else, returning 1);
- `forward(x)`: decode(encode(x)) on the same stream state. Streaming, the
  first `encoder.delay` latent frames of a fresh stream precede the signal:
  they become silence instead of being decoded, so `forward`'s delay is the
  encoder's (in samples) plus the decoder's;
- `prior(temperature)`: latents drawn from N(0, 1) times the temperature,
  the prior a VAE's KL term (and a Wasserstein MMD term) pulls the latent
  towards, so the draws sound like the model's own material; or, once
  `embed_prior` gave it one, a trained prior (generation/prior_stream's
  PriorStream: `ravelive export --prior`), its stream state in its buffers;
- `reset()`: both stacks' caches, the skipped frames and a trained prior's
  sequence, as a fresh stream.

`register_codec` declares the methods nn~ sees, with their delays from the
stacks: `encode` [1, 1, latent, ratio], `decode` [latent, ratio, 1, 1],
`forward` [1, 1, 1, 1] (blocks of `ratio`), `prior` [1, ratio, latent,
ratio] (not deterministic), and the attribute `gain`.
"""

from typing import List, Tuple

import torch
from torch import nn

from ravelive.models.attributes import AttributeType
from ravelive.models.export import ContractModule

MAX_GAIN = 4.0  # default largest output gain set_gain accepts (+12 dB)


class LatentCodec(ContractModule):
    """Base of streaming autoencoders under the nn~ contract; see the module."""

    streaming: torch.jit.Final[bool]
    ratio: torch.jit.Final[int]
    latent_dims: torch.jit.Final[int]
    max_gain: torch.jit.Final[float]
    gain: float

    def __init__(
        self, sample_rate: int, ratio: int, latent_dims: int, *, streaming: bool, max_gain: float = MAX_GAIN
    ) -> None:
        super().__init__(sample_rate)
        self.streaming = streaming
        self.ratio = ratio
        self.latent_dims = latent_dims
        self.max_gain = float(max_gain)
        self.gain = 1.0
        self.trained_prior = nn.ModuleList()  # empty: `prior` draws noise; or the one trained prior it plays

    def embed_prior(self, stream: nn.Module) -> None:
        """Play `stream` (temperature [b, 1, m] -> latents [b, latent_dims, m], with `reset()`) as `prior`.

        Call it after loading the weights: a training checkpoint has no prior in it."""
        self.trained_prior.append(stream)

    def register_codec(self, *, encode_delay: int | None = None, decode_delay: int | None = None,
                       forward_delay: int | None = None, decode_controls: List[str] = ()) -> None:
        """Declare the methods and the gain attribute; `self.encoder` and `self.decoder` must exist.

        The delays default to the stacks' own (encoder frames times the ratio, the decoder's samples, their
        sum); a subclass with more stages around them (resamplers: RaveModel) passes its own.
        `decode_controls` labels extra control-rate inputs of `decode` after the latent (a
        descriptor-conditioned model's knobs).
        """
        # latent frames of a fresh stream that precede the signal; forward keeps them from the decoder
        self.register_buffer("latent_skip", torch.tensor(self.encoder.delay), persistent=False)
        audio, latents = ["(signal) audio"], [f"(signal) latent {i}" for i in range(self.latent_dims)]
        encode_delay = self.encoder.delay * self.ratio if encode_delay is None else encode_delay
        decode_delay = self.decoder.delay if decode_delay is None else decode_delay
        forward_delay = encode_delay + decode_delay if forward_delay is None else forward_delay
        self.register_method("encode", [1, 1, self.latent_dims, self.ratio], audio, latents, delay=encode_delay)
        inputs = latents + list(decode_controls)
        self.register_method("decode", [len(inputs), self.ratio, 1, 1], inputs, audio, delay=decode_delay)
        self.register_method(
            "forward", [1, 1, 1, 1], audio, audio, delay=forward_delay, block_multiple=self.ratio
        )
        self.register_method(
            "prior", [1, self.ratio, self.latent_dims, self.ratio], ["(signal) temperature"], latents,
            delay=0, deterministic=False,
        )
        self.register_attribute("gain", [AttributeType.FLOAT])

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [batch, latent_dims, m] -> audio [batch, 1, m * ratio], times `gain`."""
        return self.decoder(z) * self.gain

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

    @torch.jit.export
    def prior(self, temperature: torch.Tensor) -> torch.Tensor:
        """Random latents [batch, latent_dims, m] at temperature [batch, 1, m]: the trained prior's, else noise."""
        for trained in self.trained_prior:
            return trained(temperature)
        noise = torch.randn(
            temperature.shape[0], self.latent_dims, temperature.shape[-1], dtype=temperature.dtype,
            device=temperature.device,
        )
        return temperature * noise

    @torch.jit.export
    def get_gain(self) -> Tuple[float]:
        return (self.gain,)

    @torch.jit.export
    def set_gain(self, gain: float) -> int:
        """Output gain; refuses (returns 1) anything outside [0, max_gain]."""
        if not (0.0 <= gain <= self.max_gain):
            return 1
        self.gain = gain
        return 0

    @torch.jit.export
    def reset(self) -> None:
        self.encoder.reset()
        self.decoder.reset()
        self.latent_skip.fill_(self.encoder.delay)
        for trained in self.trained_prior:
            trained.reset()
