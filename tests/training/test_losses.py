"""Losses and discriminators: the properties training relies on."""

import pytest
import torch

from ravelive.training.discriminators import CombinedDiscriminator, split_scores
from ravelive.training.losses import (
    SpectralDistance,
    feature_matching,
    generator_adversarial_losses,
    hinge_discriminator_loss,
    hinge_generator_loss,
    kl_beta,
)


def test_spectral_distance_is_zero_on_itself_and_hardly_hears_phase():
    t = torch.arange(8192) / 44100
    sine, shifted = torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 440 * t + 1.0)
    other = torch.sin(2 * torch.pi * 880 * t)
    distance = SpectralDistance((2048, 512, 128))
    assert distance(sine[None, None], sine[None, None]) == 0
    # not exactly phase-blind: the windows' edges and the log of near-silent bins still see it
    assert distance(sine[None, None], shifted[None, None]) < 0.3 * distance(sine[None, None], other[None, None])


def test_spectral_distance_skips_windows_longer_than_the_signal():
    x = torch.randn(2, 4, 300, generator=torch.Generator().manual_seed(0))  # bands: 4 signals of 300 samples
    assert torch.isfinite(SpectralDistance((2048, 256, 64))(x, 0.5 * x))


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0), (50, 0.05), (100, 0.1), (1000, 0.1)])
def test_beta_warms_up_linearly(step, expected):
    assert kl_beta(step, 0.1, 100) == pytest.approx(expected)


def test_hinge_losses_cost_nothing_past_the_margin():
    confident_real, confident_fake = [torch.full((2, 5), 1.5)], [torch.full((2, 5), -1.5)]
    assert hinge_discriminator_loss(confident_real, confident_fake) == 0
    assert hinge_discriminator_loss([torch.zeros(2, 5)], [torch.zeros(2, 5)]) == 2
    assert hinge_generator_loss(confident_fake) == 1.5


def test_feature_matching_is_unweighted_and_moves_only_the_fake_side():
    real = [[torch.ones(2, 3, requires_grad=True)]]
    fake = [[torch.zeros(2, 3, requires_grad=True)]]
    loss = feature_matching(real, fake)
    assert loss == 1.0  # the caller applies TrainConfig.feature_matching_weight, once
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_discriminators_score_real_and_fake_halves_of_one_pass():
    discriminator = CombinedDiscriminator((2, 3, 5), 2, capacity=2, layers=2)
    scores = discriminator(torch.randn(4, 1, 4001, generator=torch.Generator().manual_seed(0)))
    assert len(scores) == 5  # three periods, two scales
    real, fake = split_scores(scores, 2)
    for (logits, features), (fake_logits, fake_features) in zip(real, fake):
        assert logits.shape[0] == fake_logits.shape[0] == 2
        assert len(features) == len(fake_features) == 2


def test_the_generator_losses_leave_the_discriminator_without_gradient_and_equal_one_joint_pass():
    torch.manual_seed(0)
    discriminator = CombinedDiscriminator((2, 3), 2, capacity=2, layers=3)
    real = torch.randn(2, 1, 4096)
    fake = torch.randn(2, 1, 4096, requires_grad=True)

    adversarial, matching = generator_adversarial_losses(discriminator, real, fake)
    (adversarial + 10 * matching).backward()
    assert all(p.grad is None for p in discriminator.parameters())
    assert all(p.requires_grad for p in discriminator.parameters())  # trainable again for its own step
    gradient, fake.grad = fake.grad, None

    # what the loop did before: one pass over both halves, the real features detached by feature_matching
    joint_real, joint_fake = split_scores(discriminator(torch.cat([real, fake])), 2)
    joint_adversarial = hinge_generator_loss([logits for logits, _ in joint_fake])
    joint_matching = feature_matching([maps for _, maps in joint_real], [maps for _, maps in joint_fake])
    (joint_adversarial + 10 * joint_matching).backward()
    assert torch.equal(adversarial, joint_adversarial) and torch.equal(matching, joint_matching)
    assert torch.equal(gradient, fake.grad)
