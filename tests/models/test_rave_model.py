"""RAVE model: streaming == offline after the reported delay for every preset, delays add up, training pass."""

import pytest
import torch

from ravelive.dsp.pqmf import PQMFAnalysis, PQMFSynthesis
from ravelive.models.rave import RaveModel, resolve_config

NARROW = {"capacity": 4, "noise_hidden": 4}  # every preset at reduced width, random weights
PRESET_COMBINATIONS = [["v2"], ["v2_small"], ["raspberry"], ["v2", "causal"], ["v2_small", "causal"], ["tiny"],
                       ["tiny", "causal"], ["v2", "wasserstein"]]
TOLERANCE = 1e-4
# measured max |streamed - offline| past the delay, blocks of 1, 3, 7 x the ratio: <= 1.2e-6 for every combination


def twins(presets, **overrides):
    """Offline and streaming models with the same seeded weights (noise included: it is a hash of position)."""
    config = resolve_config(presets, {**NARROW, **overrides})
    torch.manual_seed(0)
    offline = RaveModel(config).eval()
    streaming = RaveModel(config, streaming=True).eval()
    streaming.load_state_dict(offline.state_dict())
    return offline, streaming


def method_input(model, method, blocks, batch=2, seed=1):
    spec = model.exported_methods[method]
    frames = blocks * spec.block_multiple // spec.in_ratio
    scale = 0.5 if spec.in_ratio == 1 else 1.0
    return scale * torch.randn(batch, spec.in_channels, frames, generator=torch.Generator().manual_seed(seed))


def stream(call, x, frames_per_call):
    with torch.inference_mode():
        return torch.cat([call(x[:, :, i : i + frames_per_call]) for i in range(0, x.shape[-1], frames_per_call)], -1)


@pytest.mark.parametrize("presets", PRESET_COMBINATIONS, ids="+".join)
@pytest.mark.parametrize("method", ["encode", "decode", "forward"])
@pytest.mark.parametrize("blocks_per_call", [1, 3, 7])
def test_streaming_equals_offline_after_the_delay(presets, method, blocks_per_call):
    offline, streaming = twins(presets)
    spec = streaming.exported_methods[method]
    x = method_input(streaming, method, blocks=spec.delay // spec.block_multiple + 8)
    with torch.inference_mode():
        reference = getattr(offline, method)(x)
    streaming.reset()
    streamed = stream(getattr(streaming, method), x, blocks_per_call * spec.block_multiple // spec.in_ratio)
    lag = spec.delay // spec.out_ratio
    assert streamed.shape == reference.shape
    assert torch.count_nonzero(streamed[:, :, :lag]) == 0
    difference = (streamed[:, :, lag:] - reference[:, :, : reference.shape[-1] - lag]).abs().max().item()
    assert difference <= TOLERANCE


@pytest.mark.parametrize("presets", [["v2"], ["tiny"]], ids="+".join)
def test_delays_are_pqmf_plus_encoder_plus_decoder(presets):
    _, model = twins(presets)
    config, delays = model.config, model.delays
    assert delays["encode"] == model.encoder.delay * config.ratio
    assert delays["decode"] == model.decoder.delay
    assert delays["forward"] == delays["encode"] + delays["decode"]
    # the encoder starts from the PQMF analysis' delay; the synthesis adds its look-ahead to the decoder's
    analysis = PQMFAnalysis(config.bands)
    assert model.encoder.net[0].input_delay == analysis.delay
    look_ahead = PQMFSynthesis(config.bands).delay
    assert delays["decode"] == model.decoder.band_delay * config.bands + look_ahead
    assert model.encoder.block_multiple == config.ratio  # the block rule, computed layer by layer
    assert all(method.block_multiple == config.ratio for method in model.exported_methods.values())


def test_causal_models_wait_only_for_the_pqmf():
    _, causal = twins(["v2", "causal"])
    _, centred = twins(["v2"])
    for method in ("encode", "decode", "forward"):
        assert causal.delays[method] < centred.delays[method]
    # causal layers add no delay: decode waits for the synthesis look-ahead (13 band frames of 16 samples),
    # encode for the analysis look-ahead rounded up to one latent frame
    assert causal.delays == {"encode": 2048, "decode": 208, "forward": 2256, "prior": 0}
    assert centred.delays == {"encode": 14336, "decode": 10832, "forward": 25168, "prior": 0}


def test_noise_generator_streams_like_offline():
    offline, streaming = twins(["tiny"])
    offline_noise, streaming_noise = offline.decoder.noise[0], streaming.decoder.noise[0]
    h = torch.randn(2, 4, 4 * 120, generator=torch.Generator().manual_seed(3))  # hidden features at width 4
    with torch.inference_mode():
        reference = offline_noise(h)
    # inside the decoder the noise sees the hidden stream `input_delay` band frames late: feed it that way
    late = streaming_noise.input_delay
    delayed = torch.cat([torch.zeros(2, 4, late), h[:, :, : h.shape[-1] - late]], -1)
    streaming_noise.reset()
    streamed = stream(streaming_noise, delayed, 3 * streaming_noise.frame)
    lag = streaming_noise.delay  # band frames, the input's lateness included
    assert torch.count_nonzero(streamed[..., :lag]) == 0
    torch.testing.assert_close(streamed[..., lag:], reference[..., :-lag], rtol=0, atol=1e-6)


def test_noise_is_quiet_at_first_repeatable_in_eval_and_fresh_in_training():
    offline, _ = twins(["tiny"])
    z = torch.randn(1, 8, 10, generator=torch.Generator().manual_seed(4)).repeat(2, 1, 1)  # two equal rows
    with torch.inference_mode():
        noisy = offline.decode(z)
        offline.decoder.noise_enabled = False
        quiet = offline.decode(z)
        offline.decoder.noise_enabled = True
        assert torch.equal(offline.decode(z), noisy)  # eval: noise is a function of stream position
        offline.train()
        first, second = offline.decode(z), offline.decode(z)
    assert 0 < (noisy - quiet).abs().max() < 0.1  # an untrained generator starts near silence (sigmoid(x - 5))
    assert torch.equal(noisy[0], noisy[1])
    assert not torch.equal(first, second)
    assert not torch.equal(first[0], first[1])  # each row draws its own stretch of noise


@pytest.mark.parametrize("regularizer", ["vae", "wasserstein"])
def test_autoencode_gives_what_a_loss_needs_and_trains(regularizer):
    torch.manual_seed(0)
    model = RaveModel(resolve_config(["tiny"], {"regularizer": regularizer}))
    x = 0.5 * torch.randn(2, 1, 32 * 20, generator=torch.Generator().manual_seed(5))
    out = model.autoencode(x)
    assert out.audio.shape == x.shape
    assert out.bands.shape == out.input_bands.shape == (2, 4, 160)
    assert out.latent.shape == (2, 8, 20)
    assert out.regularization.ndim == 0 and out.regularization.item() >= 0
    (out.audio - x).abs().mean().add(out.regularization).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)


def test_vae_encode_is_the_mean_and_training_samples_around_it():
    offline, _ = twins(["tiny"])
    x = 0.5 * torch.randn(1, 1, 32 * 10, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        raw = offline.encoder(x)
        torch.testing.assert_close(offline.encode(x), raw[:, :8])
        assert not torch.equal(offline.autoencode(x).latent, offline.encode(x))


def test_streaming_model_refuses_the_training_pass():
    _, streaming = twins(["tiny"])
    with pytest.raises(RuntimeError, match="build the model with streaming=False"):
        streaming.autoencode(torch.zeros(1, 1, 32))


def test_checkpoints_hold_weights_only_and_load_into_either_mode():
    offline, streaming = twins(["tiny"])
    assert offline.state_dict().keys() == streaming.state_dict().keys()
    assert not any("history" in key or "warmup" in key or "latent_skip" in key for key in streaming.state_dict())


def test_forward_and_encode_decode_share_one_stream():
    _, model = twins(["tiny"])
    x = method_input(model, "forward", blocks=40, batch=1)
    model.reset()
    only_forward = stream(model, x, 32)
    model.reset()
    with torch.inference_mode():
        first = model(x[:, :, : 32 * 20])
        second = model.decode(model.encode(x[:, :, 32 * 20 :]))
    torch.testing.assert_close(torch.cat([first, second], -1), only_forward, rtol=0, atol=1e-6)


def test_full_width_v2_streams_like_offline():
    # 31.7 M parameters: ~1 s to build both, ~2 s to check; the narrow models above cover the other presets
    config = resolve_config(["v2"])
    torch.manual_seed(0)
    offline = RaveModel(config).eval()
    streaming = RaveModel(config, streaming=True).eval()
    streaming.load_state_dict(offline.state_dict())
    spec = streaming.exported_methods["forward"]
    x = method_input(streaming, "forward", blocks=spec.delay // spec.block_multiple + 3, batch=1)
    with torch.inference_mode():
        reference = offline(x)
    streaming.reset()
    streamed = stream(streaming, x, spec.block_multiple)
    lag = spec.delay
    assert (streamed[:, :, lag:] - reference[:, :, :-lag]).abs().max() <= TOLERANCE
