"""Cached convolutions: streaming output equals offline output delayed by exactly `delay`."""

import pytest
import torch

from ravelive.dsp.cached_conv import (
    CachedConv1d,
    CachedDelay,
    CachedResidual,
    CachedSequential,
    CachedUpsample,
)
from ravelive.models.torchscript import script

AWKWARD_BLOCKS = [1, 63, 64, 65, 511, 8193]
SIGNAL_FRAMES = 9000



def twins(build, seed=0):
    """The same module built offline and streaming, with the same (seeded) weights."""
    torch.manual_seed(seed)
    offline = build(streaming=False)
    streaming = build(streaming=True)
    streaming.load_state_dict(offline.state_dict())
    return offline, streaming


def stream(module, x, block):
    """Feed x to a fresh stream in consecutive blocks of `block` frames (the last one may be shorter)."""
    module.reset()
    with torch.inference_mode():
        return torch.cat([module(x[:, :, start : start + block]) for start in range(0, x.shape[-1], block)], -1)


def assert_streams_offline(offline, streaming, x, block):
    with torch.inference_mode():
        reference = offline(x)
    streamed = stream(streaming, x, block)
    delay = streaming.delay
    assert streamed.shape == reference.shape
    assert torch.count_nonzero(streamed[:, :, :delay]) == 0
    torch.testing.assert_close(streamed[:, :, delay:], reference[:, :, : reference.shape[-1] - delay], rtol=0, atol=1e-5)


def noise(channels, frames=SIGNAL_FRAMES, batch=2, seed=1):
    return torch.randn(batch, channels, frames, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("block", AWKWARD_BLOCKS)
def test_stride_one_conv_streams_like_offline_for_any_block(causal, block):
    offline, streaming = twins(lambda streaming: CachedConv1d(2, 3, 5, dilation=2, causal=causal, streaming=streaming))
    assert streaming.delay == (0 if causal else 4)
    assert_streams_offline(offline, streaming, noise(2), block)


@pytest.mark.parametrize("input_delay", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("block", [4, 64, 516])
def test_strided_conv_aligns_any_input_delay(input_delay, block):
    # the conv sees a stream already `input_delay` frames late, as it would inside a stack
    def build(streaming):
        return CachedSequential(
            CachedDelay(2, input_delay, streaming=streaming),
            CachedConv1d(2, 3, 7, stride=4, causal=False, streaming=streaming, input_delay=input_delay),
        )

    offline, streaming = twins(build)
    conv = streaming[1]
    assert (conv.future + input_delay + conv.alignment) % 4 == 0
    assert streaming.delay == (3 + input_delay + conv.alignment) // 4
    assert_streams_offline(offline, streaming, noise(2, frames=4 * 600), block)


@pytest.mark.parametrize("block", AWKWARD_BLOCKS)
def test_delay_line_delays_by_its_length(block):
    offline, streaming = twins(lambda streaming: CachedDelay(2, 70, streaming=streaming))
    x = noise(2)
    assert torch.equal(offline(x), x)
    assert streaming.delay == 70
    assert_streams_offline(offline, streaming, x, block)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("block", [1, 3, 64, 65])
def test_upsample_streams_like_offline(causal, block):
    offline, streaming = twins(
        lambda streaming: CachedUpsample(2, 3, 4, 9, causal=causal, pre_activation=True, streaming=streaming, input_delay=2)
    )
    assert (streaming.up, streaming.down, streaming.block_multiple) == (4, 1, 1)
    # input_delay=2 input frames become 8 output frames; the centred kernel adds its look-ahead of 4
    assert streaming.delay == (8 if causal else 12)
    x = noise(2, frames=600)
    delayed = torch.cat([torch.zeros(2, 2, 2), x[:, :, :-2]], -1)  # what a stream 2 frames late looks like
    with torch.inference_mode():
        reference = offline(x)
    streamed = stream(streaming, delayed, block)
    assert torch.count_nonzero(streamed[:, :, : streaming.delay]) == 0
    torch.testing.assert_close(streamed[:, :, streaming.delay :], reference[:, :, : -streaming.delay], rtol=0, atol=1e-5)


@pytest.mark.parametrize("block", [1, 63, 511])
def test_residual_aligns_its_skip_path(block):
    offline, streaming = twins(lambda streaming: CachedResidual(3, 3, dilation=3, causal=False, streaming=streaming))
    assert streaming.delay == 3
    assert streaming.skip.delay == 3
    assert_streams_offline(offline, streaming, noise(3, frames=2000), block)


def encoder_decoder(streaming, causal=False):
    """A small down-then-up stack like an autoencoder: 1 -> /8 -> x8 -> 1 channel."""
    layers = [CachedConv1d(1, 4, 4, stride=2, causal=causal, streaming=streaming)]
    layers.append(CachedResidual(4, 3, causal=causal, streaming=streaming, input_delay=layers[-1].delay))
    layers.append(
        CachedConv1d(4, 4, 8, stride=4, causal=causal, pre_activation=True, streaming=streaming, input_delay=layers[-1].delay)
    )
    layers.append(CachedUpsample(4, 4, 4, 9, causal=causal, streaming=streaming, input_delay=layers[-1].delay))
    layers.append(CachedUpsample(4, 1, 2, 5, causal=causal, streaming=streaming, input_delay=layers[-1].delay))
    return CachedSequential(*layers)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("block", [8, 64, 8 * 65, 8192])
def test_stack_streams_like_offline_at_multiples_of_its_stride(causal, block):
    offline, streaming = twins(lambda streaming: encoder_decoder(streaming, causal))
    assert (streaming.up, streaming.down, streaming.block_multiple) == (1, 1, 8)
    assert (streaming.delay == 0) == causal
    assert_streams_offline(offline, streaming, noise(1, frames=8 * 1100), block)


def test_stack_block_rule_follows_its_rates():
    down = CachedSequential(CachedConv1d(1, 2, 4, stride=4), CachedConv1d(2, 2, 4, stride=2))
    assert (down.up, down.down, down.block_multiple) == (1, 8, 8)
    down_up = CachedSequential(CachedConv1d(1, 2, 4, stride=4), CachedUpsample(2, 1, 2, 3))
    assert (down_up.up, down_up.down, down_up.block_multiple) == (1, 2, 4)
    up_down = CachedSequential(CachedUpsample(1, 2, 2, 3), CachedConv1d(2, 1, 6, stride=6))
    assert (up_down.up, up_down.down, up_down.block_multiple) == (1, 3, 3)


def test_scripted_stack_streams_like_eager():
    offline, streaming = twins(encoder_decoder)
    scripted = script(streaming)
    x = noise(1, frames=8 * 300)
    torch.testing.assert_close(stream(scripted, x, 64), stream(streaming, x, 64), rtol=0, atol=1e-6)


def test_reset_restarts_the_stream():
    _, streaming = twins(encoder_decoder)
    x = noise(1, frames=8 * 100)
    first = stream(streaming, x, 8)
    assert torch.equal(stream(streaming, x, 8), first)


def test_stream_state_stays_out_of_the_state_dict():
    offline, streaming = twins(encoder_decoder)
    assert streaming.state_dict().keys() == offline.state_dict().keys()
    assert not [key for key in streaming.state_dict() if "history" in key or "warmup" in key]


def test_block_that_breaks_the_stride_is_refused():
    conv = CachedConv1d(1, 1, 8, stride=4)
    with pytest.raises(RuntimeError, match="a block of 6 frames does not divide by the stride 4"):
        conv(torch.zeros(1, 1, 6))


def test_batch_beyond_the_allocated_state_is_refused():
    conv = CachedConv1d(1, 1, 3, max_batch=2)
    with pytest.raises(RuntimeError, match="batch 3 is larger than the 2 streams"):
        conv(torch.zeros(3, 1, 16))


def test_stack_refuses_a_layer_built_for_another_delay():
    first = CachedConv1d(1, 2, 3, causal=False)
    with pytest.raises(ValueError, match="built for an input delay of 0 frames but follows a delay of 1"):
        CachedSequential(first, CachedConv1d(2, 2, 3))
