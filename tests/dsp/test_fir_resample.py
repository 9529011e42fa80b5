"""In-model FIR resampling: time-aligned offline, streaming == offline after `delay`, nothing in state_dict."""

import math

import pytest
import torch

from ravelive.dsp.fir_resample import FIRDecimator, FIRInterpolator
from ravelive.models.torchscript import script


def stream(module, x, block):
    module.reset()
    return torch.cat([module(x[:, :, start : start + block]) for start in range(0, x.shape[-1], block)], -1)


def tone(frames: int, cycles_per_sample: float) -> torch.Tensor:
    return torch.sin(2 * math.pi * cycles_per_sample * torch.arange(frames, dtype=torch.float64)).float()[None, None]


@pytest.mark.parametrize("factor", [2, 3])
def test_a_passband_tone_comes_back_in_place(factor):
    x = tone(4096 * factor, 0.1 / factor)  # well inside the lower rate's passband
    down, up = FIRDecimator(factor), FIRInterpolator(factor)
    low = down(x)
    assert low.shape[-1] == x.shape[-1] // factor
    torch.testing.assert_close(low[..., 200:-200], x[..., ::factor][..., 200:-200], rtol=0, atol=2e-3)
    torch.testing.assert_close(up(low)[..., 600:-600], x[..., 600:-600], rtol=0, atol=2e-3)


def test_a_tone_above_the_lower_nyquist_is_removed():
    x = tone(8192, 0.4)  # 0.8 of the 2x-decimated rate: would alias to 0.2
    assert FIRDecimator(2)(x)[..., 200:-200].abs().max() < 1e-3


@pytest.mark.parametrize("block_frames", [1, 5, 64])
@pytest.mark.parametrize("kind", [FIRDecimator, FIRInterpolator])
def test_streaming_equals_offline_after_delay(kind, block_frames):
    factor, input_delay = 2, 3
    offline, streaming = kind(factor), kind(factor, streaming=True, input_delay=input_delay)
    x = torch.randn(2, 1, 64 * factor * 4, generator=torch.Generator().manual_seed(1))
    late = torch.cat([torch.zeros(2, 1, input_delay), x], -1)  # the stream it is built for
    block = block_frames * streaming.block_multiple
    late = late[..., : late.shape[-1] // block * block]
    with torch.inference_mode():
        streamed, expected = stream(streaming, late, block), offline(x)
    delay = streaming.delay
    assert torch.count_nonzero(streamed[..., :delay]) == 0
    length = streamed.shape[-1] - delay
    torch.testing.assert_close(streamed[..., delay:], expected[..., :length], rtol=0, atol=1e-6)


def test_the_filters_are_not_trained_state_and_script():
    for module in (FIRDecimator(2, streaming=True), FIRInterpolator(2, streaming=True)):
        assert module.state_dict() == {} and not list(module.parameters())
        scripted = script(module)  # shares the stream buffers with `module`: reset before each
        x = torch.randn(1, 1, 64)
        scripted.reset()
        expected = scripted(x)
        module.reset()
        torch.testing.assert_close(module(x), expected)
