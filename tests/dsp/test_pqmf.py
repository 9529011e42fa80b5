"""PQMF: near-perfect reconstruction, streaming == offline after `delay`, TorchScript."""

import pytest
import torch

from ravelive.dsp.pqmf import PQMF, PQMFAnalysis, PQMFSynthesis, prototype
from ravelive.errors import ConfigError
from ravelive.models.torchscript import script

BANDS = 16
EDGE = 1000  # samples at each end where the offline zero padding differs from the signal


def noise(frames, channels=1, batch=2, seed=1):
    return 0.5 * torch.randn(batch, channels, frames, generator=torch.Generator().manual_seed(seed))


def stream(module, x, block):
    module.reset()
    with torch.inference_mode():
        return torch.cat([module(x[:, :, i : i + block]) for i in range(0, x.shape[-1], block)], -1)


def twins(build):
    return build(streaming=False), build(streaming=True)


@pytest.mark.parametrize("bands", [2, 4, 16])
def test_offline_round_trip_is_near_perfect_and_not_shifted(bands):
    pqmf = PQMF(bands)
    x = noise(bands * 2000)
    with torch.inference_mode():
        y = pqmf.inverse(pqmf(x))
    error = (y - x)[:, :, EDGE:-EDGE]
    # measured: max 1.5e-3 .. 1.9e-3 on this noise (peak ~2), RMS 9.3e-4 of the signal's (-61 dB)
    assert error.abs().max() < 3e-3
    assert error.pow(2).mean().sqrt() < 1.2e-3 * x.pow(2).mean().sqrt()


def test_streaming_round_trip_is_the_input_delayed_by_delay():
    pqmf = PQMF(BANDS, streaming=True)
    assert pqmf.delay == 416  # 413-tap prototype: 13 band frames of look-ahead per half
    x = noise(BANDS * 1000)
    y = stream(pqmf.synthesis, stream(pqmf.analysis, x, 48), 5)
    delay = pqmf.delay
    assert torch.count_nonzero(y[:, :, :delay]) == 0
    error = (y[:, :, delay:] - x[:, :, : x.shape[-1] - delay])[:, :, EDGE:]
    assert error.abs().max() < 3e-3


@pytest.mark.parametrize("block", [16, 48, 1008, 8208])
def test_analysis_streams_like_offline(block):
    offline, streaming = twins(lambda streaming: PQMFAnalysis(BANDS, streaming=streaming))
    x = noise(BANDS * 700)
    with torch.inference_mode():
        reference = offline(x)
    streamed = stream(streaming, x, block)
    lag = streaming.delay
    assert streamed.shape == reference.shape == (2, BANDS, 700)
    torch.testing.assert_close(streamed[:, :, lag:], reference[:, :, :-lag], rtol=0, atol=1e-5)


@pytest.mark.parametrize("block", [1, 3, 63, 65])
def test_synthesis_streams_like_offline(block):
    offline, streaming = twins(lambda streaming: PQMFSynthesis(BANDS, streaming=streaming))
    x = noise(700, channels=BANDS)
    with torch.inference_mode():
        reference = offline(x)
    streamed = stream(streaming, x, block)
    lag = streaming.delay
    assert streamed.shape == reference.shape == (2, 1, BANDS * 700)
    torch.testing.assert_close(streamed[:, :, lag:], reference[:, :, :-lag], rtol=0, atol=1e-5)


def test_prototype_is_symmetric_and_odd():
    h = prototype(BANDS)
    assert h.shape[0] % 2 == 1
    assert (h == h[::-1]).all()
    assert h.sum() == pytest.approx(1.0, abs=1e-3)


def test_filters_are_not_trained():
    assert not any(p.requires_grad for p in PQMF(4).parameters())


def test_scripted_pqmf_streams_like_the_python_module():
    pqmf = PQMF(BANDS, streaming=True)
    scripted = script(pqmf)
    x = noise(BANDS * 100)
    torch.testing.assert_close(stream(scripted, x, 64), stream(pqmf, x, 64), rtol=0, atol=0)
    scripted.reset()
    with torch.inference_mode():
        assert scripted.inverse(scripted(x)).shape == x.shape


def test_one_band_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="PQMF bands = 1: expected an integer >= 2"):
        PQMF(1)
