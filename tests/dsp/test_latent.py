import numpy as np
import pytest
import torch

from ravelive.dsp.latent import LatentProcessor, LatentTransform
from ravelive.errors import ParameterError

DIMS = 3


def latents(frames, start=0.0):
    values = start + np.arange(DIMS * frames, dtype=np.float32).reshape(1, DIMS, frames)
    return torch.from_numpy(values)


def test_identity_is_inactive_and_leaves_latents_unchanged():
    transform = LatentTransform.identity(DIMS)
    assert not transform.active
    z = latents(4)
    np.testing.assert_array_equal(LatentProcessor(DIMS)(transform, z).numpy(), z.numpy())


def test_bias_and_scale_act_per_dimension():
    transform = LatentTransform.identity(DIMS).with_value("bias", 1, 0.5).with_value("scale", 2, -1.0)
    assert transform.active
    z = latents(2)
    expected = z.numpy().copy()
    expected[0, 1] += 0.5
    expected[0, 2] *= -1.0
    np.testing.assert_allclose(LatentProcessor(DIMS)(transform, z).numpy(), expected)


def test_replace_sets_the_value_of_every_frame():
    transform = LatentTransform.identity(DIMS).with_value("replace", 0, 7.0)
    out = LatentProcessor(DIMS)(transform, latents(3)).numpy()
    np.testing.assert_array_equal(out[0, 0], [7.0, 7.0, 7.0])
    np.testing.assert_array_equal(out[0, 1:], latents(3).numpy()[0, 1:])


def test_freeze_holds_the_last_value_before_the_freeze_across_blocks():
    processor = LatentProcessor(DIMS)
    processor(LatentTransform.identity(DIMS).with_value("bias", 2, 1.0), latents(2))  # last frame of dim 0: 1.0
    frozen = LatentTransform.identity(DIMS).with_value("freeze", 0, True)
    for start in (100.0, 200.0):
        out = processor(frozen, latents(2, start=start)).numpy()
        np.testing.assert_array_equal(out[0, 0], [1.0, 1.0])
        np.testing.assert_array_equal(out[0, 1], latents(2, start=start).numpy()[0, 1])


def test_freeze_with_no_history_holds_the_first_frame():
    processor = LatentProcessor(DIMS)
    processor.forget_held()
    out = processor(LatentTransform.identity(DIMS).with_value("freeze", 1, True), latents(4)).numpy()
    np.testing.assert_array_equal(out[0, 1], [4.0, 4.0, 4.0, 4.0])


def test_noise_is_seeded_per_frame_and_only_on_its_dimension():
    transform = LatentTransform.identity(DIMS).with_value("noise", 1, 0.5)
    zero = torch.zeros(1, DIMS, 64)
    first = LatentProcessor(DIMS, seed=3)(transform, zero).numpy()
    again = LatentProcessor(DIMS, seed=3)(transform, zero).numpy()
    np.testing.assert_array_equal(first, again)
    assert 0.3 < first[0, 1].std() < 0.7
    assert len(np.unique(first[0, 1])) == 64  # a new value every frame
    np.testing.assert_array_equal(first[0, [0, 2]], 0.0)


def test_out_of_range_dimension_is_refused():
    with pytest.raises(ParameterError, match=r"latent dimension 3 is out of range \[0, 2\]"):
        LatentTransform.identity(DIMS).with_value("bias", 3, 1.0)


def test_unknown_field_is_refused():
    with pytest.raises(ParameterError, match="latent field 'shift' is unknown"):
        LatentTransform.identity(DIMS).with_value("shift", 0, 1.0)


def test_fields_of_different_lengths_are_refused():
    with pytest.raises(ParameterError, match="latent transform fields differ in length"):
        LatentTransform((0.0,), (1.0, 1.0), (False,), (None,), (0.0,))


def test_transform_for_another_latent_size_is_refused():
    with pytest.raises(ParameterError, match="latent transform has 2 dimensions, the model's latent has 3"):
        LatentProcessor(DIMS)(LatentTransform.identity(2), latents(1))


def test_noise_does_not_depend_on_how_frames_are_split_into_blocks():
    transform = LatentTransform.identity(DIMS).with_value("noise", 0, 1.0).with_value("noise", 2, 0.1)
    z = latents(6)
    at_once = LatentProcessor(DIMS)(transform, z).numpy()
    split = LatentProcessor(DIMS)
    in_blocks = np.concatenate([split(transform, z[..., i : i + 2]).numpy() for i in range(0, 6, 2)], axis=-1)
    np.testing.assert_array_equal(in_blocks, at_once)
