"""The losses of RAVE-family training: spectral distance, the KL warm-up, hinge GAN and feature matching.

Phase 1 trains an autoencoder on

    spectral(x, y) + spectral(bands(x), bands(y)) + beta(step) * regularization

where `spectral` compares STFT magnitudes at several window sizes (RAVE's
MultiScaleSTFT + AudioDistanceV1): per scale the relative squared distance
of the linear magnitudes (dominated by loud partials) plus the mean absolute
distance of the log magnitudes (which hears quiet ones too). It is applied to
the full-band audio and to the PQMF sub-bands (RAVE's multiband loss: each
band's own spectrum, so errors in quiet high bands are not drowned by the
loud low one). Waveforms are not compared: phase is free, as for the ear.

Phase 2 adds a discriminator: hinge losses (the discriminator pushes real
scores above 1 and fake ones below -1; the generator raises the fake score)
and feature matching (L1 distance between the discriminator's feature maps
of real and reconstructed audio, a dense signal that steadies the GAN).

Why not auraloss: its MultiResolutionSTFTLoss is the same ~40 lines, and it
would be one more dependency (with its own defaults to pin) for them.
"""

from collections.abc import Sequence

import torch
from torch import nn

LOG_EPSILON = 1e-7  # log(|X| + eps): RAVE's floor, far below any audible magnitude


class MultiScaleSTFT(nn.Module):
    """Magnitude spectrograms of [b, c, n] audio at each window size, hop = window / 4 (75% overlap)."""

    def __init__(self, scales: Sequence[int]) -> None:
        super().__init__()
        self.scales = tuple(scales)
        for scale in self.scales:  # buffers: they follow the module to the GPU
            self.register_buffer(f"window_{scale}", torch.hann_window(scale), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.reshape(-1, x.shape[-1])  # every channel (band) is its own signal
        spectra = []
        for scale in self.scales:
            if scale // 2 >= x.shape[-1]:  # a window longer than the signal sees only padding
                continue
            stft = torch.stft(
                x, scale, hop_length=scale // 4, window=getattr(self, f"window_{scale}"), center=True,
                return_complex=True,
            )
            spectra.append(stft.abs())
        return spectra


class SpectralDistance(nn.Module):
    """Sum over scales of relative L2 of magnitudes + L1 of log magnitudes (RAVE's AudioDistanceV1)."""

    def __init__(self, scales: Sequence[int]) -> None:
        super().__init__()
        self.stft = MultiScaleSTFT(scales)

    def forward(self, target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        distance = target.new_zeros(())
        for x, y in zip(self.stft(target), self.stft(estimate)):
            linear = (x - y).pow(2).mean() / (x.pow(2).mean() + LOG_EPSILON)  # relative: loudness-independent
            log = (torch.log(x + LOG_EPSILON) - torch.log(y + LOG_EPSILON)).abs().mean()
            distance = distance + linear + log
        return distance


def kl_beta(step: int, beta: float, warmup_steps: int) -> float:
    """The regularization weight at `step`: 0 at the start, rising linearly to `beta` over `warmup_steps`.

    A latent regularised at full strength from step 0 collapses to the prior before it has learnt to
    carry anything (posterior collapse); warming up lets reconstruction shape it first.
    """
    if warmup_steps == 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def hinge_discriminator_loss(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over discriminators of relu(1 - D(x)) + relu(1 + D(y)): scores past the margin cost nothing."""
    losses = [torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for r, f in zip(real, fake)]
    return torch.stack(losses).sum()


def hinge_generator_loss(fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """-D(y), summed over discriminators: the generator raises its scores without a margin."""
    return torch.stack([-f.mean() for f in fake]).sum()


def feature_matching(real: Sequence[Sequence[torch.Tensor]], fake: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """L1 distance of feature maps, mean over each discriminator's layers, summed over discriminators.

    The real features are detached: this loss moves the generator only. The caller weighs the result
    once (TrainConfig.feature_matching_weight); RAVE v2's training step multiplies its feature-matching
    distance by the weight and then again through its generic loss weights, so its effective weight is
    the square of the configured one: not copied here.
    """
    total = fake[0][0].new_zeros(())
    for real_maps, fake_maps in zip(real, fake):
        layer = [(r.detach() - f).abs().mean() for r, f in zip(real_maps, fake_maps)]
        total = total + torch.stack(layer).mean()
    return total


def generator_adversarial_losses(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(hinge generator loss, feature matching) of the decoder's output `fake` against the audio `real`.

    Only the decoder learns from these: the discriminator's parameters are frozen while they are
    computed (no gradient lands on them, and backward skips their weight gradients), and the real
    audio's features, fixed targets, are computed without a graph. The same values as one pass over
    cat([real, fake]) with the real half detached afterwards, for less work.
    """
    discriminator.requires_grad_(False)
    try:
        with torch.no_grad():
            real_scores = discriminator(real)
        fake_scores = discriminator(fake)
    finally:
        discriminator.requires_grad_(True)
    adversarial = hinge_generator_loss([logits for logits, _ in fake_scores])
    matching = feature_matching([maps for _, maps in real_scores], [maps for _, maps in fake_scores])
    return adversarial, matching
