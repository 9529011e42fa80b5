"""ravelive.training.augment: each augmentation changes a batch as its docstring says."""

import math

import pytest
import torch

from ravelive.errors import ConfigError
from ravelive.training.augment import Compress, Gain, Mute, build_augmentations

RATE = 44100


def batch(count: int = 8, channels: int = 1, frames: int = 8192, amplitude: float = 0.5, seed: int = 0):
    """Sines of random frequency and phase, [count, channels, frames]."""
    generator = torch.Generator().manual_seed(seed)
    freq = 100 + 1000 * torch.rand(count, channels, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(count, channels, 1, generator=generator)
    return amplitude * torch.sin(2 * math.pi * freq * torch.arange(frames) / RATE + phase)


def rms_db(x: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(x.square().mean(dim=(-2, -1)))


@pytest.mark.parametrize("prob", [0.0, 0.5, 1.0])
def test_mute_zeroes_whole_examples_with_its_probability(prob):
    x = batch(400)
    y = Mute(prob, seed=1)(x)
    muted = (y == 0).all(dim=(1, 2))
    assert torch.equal(y[~muted], x[~muted])  # the rest untouched
    assert abs(muted.float().mean().item() - prob) < 0.08
    assert torch.equal(Mute(prob, seed=1)(x), y)  # seeded: the same examples again


def test_gain_scales_each_example_by_one_factor_in_its_range():
    x = batch(200)
    y = Gain(low_db=-6.0, high_db=3.0, prob=1.0, limit=False, seed=2)(x)
    factor = y.abs().amax(dim=(1, 2)) / x.abs().amax(dim=(1, 2))
    torch.testing.assert_close(y, x * factor[:, None, None])
    db = 20 * torch.log10(factor)
    assert db.min() >= -6.0 - 1e-4 and db.max() <= 3.0 + 1e-4 and db.max() - db.min() > 7.0


def test_gain_leaves_the_examples_it_does_not_pick():
    x = batch(400)
    y = Gain(low_db=-6.0, high_db=-6.0, prob=0.5, seed=3)(x)
    same = (y == x).all(dim=(1, 2))
    torch.testing.assert_close(y[~same], x[~same] * 10 ** (-6 / 20))
    assert 0.4 < same.float().mean().item() < 0.6


@pytest.mark.parametrize("limit, peak", [(True, 1.0), (False, 2.0)])
def test_gain_limits_to_a_peak_of_one(limit, peak):
    x = batch(4, amplitude=0.5)
    y = Gain(low_db=20 * math.log10(4), high_db=20 * math.log10(4), prob=1.0, limit=limit, seed=0)(x)
    torch.testing.assert_close(y.abs().amax(dim=(1, 2)), torch.full((4,), peak), atol=1e-3, rtol=0)


def test_compress_turns_a_steady_level_down_to_threshold_plus_excess_over_ratio():
    x = batch(4, channels=2, frames=RATE, amplitude=0.5)  # -9 dBFS RMS
    y = Compress(RATE, prob=1.0, threshold_db=(-30.0, -30.0), ratio=(4.0, 4.0), seed=0)(x)
    settled = slice(RATE // 2, RATE - 1024)  # after the attack, away from the end window
    expected = -30.0 + (rms_db(x[..., settled]) + 30.0) / 4.0
    torch.testing.assert_close(rms_db(y[..., settled]), expected, atol=0.3, rtol=0)


def test_compress_never_raises_and_leaves_quiet_examples_alone():
    loud, quiet = batch(4, amplitude=0.8), batch(4, amplitude=0.001)  # quiet: -63 dBFS, under any threshold drawn
    compress = Compress(RATE, prob=1.0, seed=4)
    assert torch.equal(compress(quiet), quiet)
    y = compress(loud)
    assert (y.abs() <= loud.abs() + 1e-7).all() and (rms_db(y) < rms_db(loud) - 1.0).all()


def test_compress_with_prob_zero_is_the_identity():
    x = batch(4)
    assert torch.equal(Compress(RATE, prob=0.0, seed=0)(x), x)


def test_no_augmentation_changes_its_input_in_place():
    x = batch(16)
    kept = x.clone()
    build_augmentations(["mute", "compress", "gain"], RATE, seed=0)(x)
    assert torch.equal(x, kept)


def test_names_build_a_seeded_chain_in_order():
    chain = build_augmentations(["gain", "mute"], RATE, seed=5)
    assert [type(step) for step in chain.steps] == [Gain, Mute]
    x = batch(32)
    assert torch.equal(chain(x), build_augmentations(["gain", "mute"], RATE, seed=5)(x))
    assert torch.equal(build_augmentations([], RATE)(x), x)


def test_an_unknown_name_is_one_line_naming_the_allowed_set():
    allowed = "choose from compress, gain, mute"
    with pytest.raises(ConfigError, match=rf"^unknown augmentation 'reverb' \(--augment\); {allowed}$"):
        build_augmentations(["mute", "reverb"], RATE)


def test_a_probability_outside_zero_one_is_refused():
    with pytest.raises(ConfigError, match=r"mute probability 1.5 is outside \[0, 1\]"):
        Mute(1.5)
