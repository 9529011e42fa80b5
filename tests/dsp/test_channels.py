import numpy as np
import pytest
import torch

from ravelive.dsp.channels import ChannelMap, InputAdapter, OutputAdapter
from ravelive.models.nn_model import MethodSpec


def spec(in_channels, in_ratio, out_channels, out_ratio):
    return MethodSpec("method", in_channels, in_ratio, out_channels, out_ratio, (), ())


def mapped(source_rows, target):
    x = np.array(source_rows, dtype=np.float32)
    out = np.full((target, x.shape[1]), np.nan, dtype=np.float32)
    ChannelMap(x.shape[0], target).write(out, x)
    return out


def test_equal_channel_counts_map_one_to_one():
    np.testing.assert_array_equal(mapped([[1, 2], [3, 4]], 2), [[1, 2], [3, 4]])


def test_stereo_into_mono_is_mixed_down():
    np.testing.assert_array_equal(mapped([[1, 2], [3, 6]], 1), [[2, 4]])


def test_mono_into_stereo_is_duplicated():
    np.testing.assert_array_equal(mapped([[1, 2]], 2), [[1, 2], [1, 2]])


@pytest.mark.parametrize("source,target,expected_sources", [(2, 4, [0, 1, 0, 1]), (3, 2, [0, 1]), (2, 3, [0, 1, 0])])
def test_other_counts_take_source_channel_modulo_the_source_count(source, target, expected_sources):
    rows = [[10.0 * channel] for channel in range(source)]
    np.testing.assert_array_equal(mapped(rows, target)[:, 0], [10.0 * channel for channel in expected_sources])


def test_control_rate_input_takes_the_last_sample_of_each_group():
    audio = np.arange(8, dtype=np.float32)[None]  # one stream channel
    tensor = InputAdapter(spec(2, 4, 1, 1), stream_channels=1, block=8)(audio)
    assert tensor.shape == (1, 2, 2)
    np.testing.assert_array_equal(tensor.numpy(), [[[3, 7], [3, 7]]])


def test_previous_input_tensor_stays_intact_while_the_next_block_is_prepared():
    adapter = InputAdapter(spec(1, 1, 1, 1), stream_channels=1, block=4)
    audio = np.ones((1, 4), dtype=np.float32)
    first = adapter(audio)
    audio[:] = 2.0
    second = adapter(audio)
    np.testing.assert_array_equal(first.numpy(), np.ones((1, 1, 4)))
    np.testing.assert_array_equal(second.numpy(), np.full((1, 1, 4), 2.0))


def test_control_rate_output_is_held_up_to_audio_rate():
    out = np.zeros((2, 8), dtype=np.float32)
    OutputAdapter(spec(1, 1, 2, 4), stream_channels=2, block=8)(torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]), out)
    np.testing.assert_array_equal(out, [[1, 1, 1, 1, 2, 2, 2, 2], [3, 3, 3, 3, 4, 4, 4, 4]])


def test_control_rate_output_mixed_down_to_a_mono_stream():
    out = np.zeros((1, 4), dtype=np.float32)
    OutputAdapter(spec(1, 1, 2, 2), stream_channels=1, block=4)(torch.tensor([[[1.0, 2.0], [3.0, 6.0]]]), out)
    np.testing.assert_array_equal(out, [[2, 2, 4, 4]])


def test_control_rate_output_into_a_column_slice_of_a_wider_buffer():
    wide = np.zeros((2, 12), dtype=np.float32)
    OutputAdapter(spec(1, 1, 2, 2), stream_channels=2, block=4)(torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]), wide[:, 4:8])
    np.testing.assert_array_equal(wide[:, 4:8], [[1, 1, 2, 2], [3, 3, 4, 4]])
    assert not wide[:, :4].any() and not wide[:, 8:].any()


@pytest.mark.parametrize("source,target", [(1, 1), (2, 1), (2, 3)])
def test_a_leading_batch_axis_of_the_source_is_dropped(source, target):
    x = np.arange(source * 3, dtype=np.float32).reshape(source, 3)
    with_batch = np.zeros((target, 3), dtype=np.float32)
    ChannelMap(source, target).write(with_batch, x[None])
    np.testing.assert_array_equal(with_batch, mapped(x, target))


def test_latent_channels_into_as_many_stream_channels_are_held_one_to_one():
    out = np.zeros((3, 4), dtype=np.float32)
    OutputAdapter(spec(1, 1, 3, 2), stream_channels=3, block=4)(torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]), out)
    np.testing.assert_array_equal(out, [[1, 1, 2, 2], [3, 3, 4, 4], [5, 5, 6, 6]])
