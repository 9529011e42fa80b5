"""Gain ramps: no steps, exact targets, any block size."""

import numpy as np
import pytest

from ravelive.dsp.smoothing import SILENCE_DB, GainRamp, WetDryMix, db_to_gain


def run(ramp, targets_and_sizes):
    out = []
    for target, size in targets_and_sizes:
        out.append(ramp.apply(np.ones((2, size), dtype=np.float32), target)[0])
    return np.concatenate(out)


@pytest.mark.parametrize("block", [1, 63, 64, 65, 511])
def test_ramp_glides_linearly_to_the_target_across_blocks(block):
    ramp = GainRamp(256, initial=1.0)
    gains = run(ramp, [(0.0, block)] * (1024 // block + 2))
    assert np.all(np.diff(gains) <= 0) and np.max(np.abs(np.diff(gains))) <= 1 / 256 + 1e-6
    assert gains[255] == pytest.approx(0.0, abs=1e-6) and np.all(gains[256:] == 0.0)
    assert ramp.value == 0.0


def test_a_new_target_mid_ramp_turns_around_without_a_step():
    ramp = GainRamp(100, initial=0.0)
    gains = run(ramp, [(1.0, 50), (0.25, 200)])
    assert np.max(np.abs(np.diff(gains))) <= 1 / 100 + 1e-6
    assert gains[-1] == pytest.approx(0.25)


def test_constant_gain_of_one_leaves_audio_untouched():
    block = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    assert np.array_equal(GainRamp(32).apply(block.copy(), 1.0), block)


def test_wet_dry_crossfades_from_wet_to_dry():
    mix = WetDryMix(64, initial_wet=1.0)
    wet = np.full((1, 128), 1.0, dtype=np.float32)
    dry = np.zeros((1, 128), dtype=np.float32)
    out = mix.apply(wet, dry, 0.0)[0]
    assert out[0] == pytest.approx(1 - 1 / 64) and np.all(out[64:] == 0.0)
    assert np.max(np.abs(np.diff(out))) <= 1 / 64 + 1e-6


def test_db_to_gain_mutes_at_the_floor():
    assert db_to_gain(0.0) == 1.0 and db_to_gain(-6.0) == pytest.approx(0.501, abs=1e-3)
    assert db_to_gain(SILENCE_DB) == 0.0
