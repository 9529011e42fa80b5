"""The streaming autoencoder: nn~ shapes, streaming == offline per method, shared stream state, gain."""

import math

import pytest
import torch

from ravelive.errors import ConfigError
from ravelive.models.autoencoder import AutoencoderConfig, StreamingAutoencoder

SMALL = AutoencoderConfig(strides=(4, 2), channels=8, latent_dims=4)  # ratio 8: quick to stream



def twins(config):
    """Offline and streaming autoencoders with the same seeded weights."""
    torch.manual_seed(0)
    offline = StreamingAutoencoder(config, streaming=False)
    streaming = StreamingAutoencoder(config)
    streaming.load_state_dict(offline.state_dict())
    return offline.eval(), streaming.eval()


def method_input(model, method, blocks, batch=2, seed=1):
    spec = model.exported_methods[method]
    frames = blocks * spec.block_multiple // spec.in_ratio
    return torch.randn(batch, spec.in_channels, frames, generator=torch.Generator().manual_seed(seed))


def stream(model, method, x, frames_per_call):
    model.reset()
    with torch.inference_mode():
        calls = [getattr(model, method)(x[:, :, i : i + frames_per_call]) for i in range(0, x.shape[-1], frames_per_call)]
    return torch.cat(calls, -1)


def test_ratio_is_the_product_of_the_strides():
    assert AutoencoderConfig().ratio == 512
    assert AutoencoderConfig(strides=(8, 4, 4, 4, 4)).ratio == 2048


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strides": ()}, r"strides \(\): expected a non-empty tuple"),
        ({"strides": (4, 0)}, r"strides \(4, 0\): expected"),
        ({"channels": 0}, "channels = 0: expected a positive integer"),
        ({"max_gain": 0.0}, "max_gain = 0.0: expected a positive number"),
        ({"strides": (4, 2), "stage_channels": (8,)}, r"stage_channels \(8,\): expected one positive integer per stride"),
        ({"strides": (4, 2), "stage_channels": (8, 0)}, r"stage_channels \(8, 0\): expected one positive"),
    ],
)
def test_config_refuses_unusable_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        AutoencoderConfig(**changes)


def test_methods_have_rave_shapes():
    model = StreamingAutoencoder(SMALL)
    params = {name: method.params for name, method in model.exported_methods.items()}
    assert params == {
        "encode": [1, 1, 4, 8],
        "decode": [4, 8, 1, 1],
        "forward": [1, 1, 1, 1],
        "prior": [1, 8, 4, 8],
    }
    x = torch.zeros(3, 1, 32)
    with torch.inference_mode():
        assert model.encode(x).shape == (3, 4, 4)
        assert model.decode(torch.zeros(3, 4, 4)).shape == (3, 1, 32)
        assert model(x).shape == (3, 1, 32)
        assert model.prior(torch.ones(3, 1, 4)).shape == (3, 4, 4)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("method", ["encode", "decode", "forward"])
@pytest.mark.parametrize("blocks_per_call", [1, 3])
def test_every_method_streams_like_offline_after_its_delay(causal, method, blocks_per_call):
    offline, streaming = twins(AutoencoderConfig(strides=(4, 2), channels=8, latent_dims=4, causal=causal))
    spec = streaming.exported_methods[method]
    assert (spec.delay == 0) == causal
    x = method_input(streaming, method, blocks=spec.delay // spec.block_multiple + 12)
    with torch.inference_mode():
        reference = getattr(offline, method)(x)
    streamed = stream(streaming, method, x, blocks_per_call * spec.block_multiple // spec.in_ratio)
    lag = spec.delay // spec.out_ratio
    assert streamed.shape == reference.shape
    assert torch.count_nonzero(streamed[:, :, :lag]) == 0
    torch.testing.assert_close(streamed[:, :, lag:], reference[:, :, : reference.shape[-1] - lag], rtol=0, atol=1e-5)


def test_non_causal_delays_add_up():
    model = StreamingAutoencoder(AutoencoderConfig(strides=(4, 2), channels=8, latent_dims=4, causal=False))
    methods = model.exported_methods
    assert methods["encode"].delay == model.encoder.delay * 8
    assert methods["decode"].delay == model.decoder.delay
    assert methods["forward"].delay == methods["encode"].delay + methods["decode"].delay
    assert all(method.block_multiple == 8 for method in methods.values())


@pytest.mark.parametrize("causal", [True, False])
def test_forward_and_encode_decode_share_one_stream(causal):
    # switching from forward to encode -> decode mid-stream continues the same stream, without a seam
    _, model = twins(AutoencoderConfig(strides=(4, 2), channels=8, latent_dims=4, causal=causal))
    x = method_input(model, "forward", blocks=40, batch=1)
    only_forward = stream(model, "forward", x, 8)
    model.reset()
    with torch.inference_mode():
        first = model(x[:, :, :160])
        second = model.decode(model.encode(x[:, :, 160:]))
    torch.testing.assert_close(torch.cat([first, second], -1), only_forward, rtol=0, atol=1e-6)


def test_gain_scales_decode_and_refuses_out_of_range_values():
    model = StreamingAutoencoder(SMALL)
    z = torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        unity = model.decode(z)
        assert model.set_gain(0.5) == 0
        assert model.get_gain() == (0.5,)
        model.reset()
        torch.testing.assert_close(model.decode(z), 0.5 * unity)
    for refused in (-0.1, SMALL.max_gain + 1, math.nan):
        assert model.set_gain(refused) == 1
    assert model.get_gain() == (0.5,)


def test_prior_scales_noise_by_temperature():
    model = StreamingAutoencoder(SMALL)
    assert torch.count_nonzero(model.prior(torch.zeros(2, 1, 5))) == 0
    assert model.prior(torch.ones(2, 1, 500)).std() == pytest.approx(1.0, abs=0.1)


def test_checkpoints_hold_weights_only():
    offline, streaming = twins(SMALL)
    assert streaming.state_dict().keys() == offline.state_dict().keys()
    assert "latent_skip" not in streaming.state_dict()


def test_stage_channels_set_each_stage_width_and_mirror_it_in_the_decoder():
    config = AutoencoderConfig(strides=(4, 2), stage_channels=[6, 10], latent_dims=4, causal=False)
    assert config.stage_channels == (6, 10)  # a list (from TOML or JSON) is kept as the tuple declared
    offline, streaming = twins(config)
    assert offline.encoder[0].conv.weight.shape[0] == 6 and offline.encoder[2].conv.weight.shape[:2] == (10, 6)
    assert offline.decoder[0].conv.weight.shape[0] == 10 and offline.decoder[-1].conv.conv.weight.shape[:2] == (1, 6)
    x = method_input(streaming, "forward", blocks=40)
    delay = streaming.exported_methods["forward"].delay
    with torch.inference_mode():
        reference = offline(x)
    streamed = stream(streaming, "forward", x, 8)
    torch.testing.assert_close(streamed[:, :, delay:], reference[:, :, : reference.shape[-1] - delay], rtol=0, atol=1e-5)


def test_uniform_stage_channels_build_the_same_network_as_channels():
    torch.manual_seed(3)
    by_channels = StreamingAutoencoder(SMALL, streaming=False).state_dict()
    torch.manual_seed(3)
    by_stages = StreamingAutoencoder(AutoencoderConfig(strides=(4, 2), stage_channels=(8, 8), latent_dims=4),
                                     streaming=False).state_dict()
    assert by_channels.keys() == by_stages.keys()
    assert all(torch.equal(by_channels[name], by_stages[name]) for name in by_channels)
    assert "stage_channels" not in SMALL.to_dict()  # files exported before the field keep an exact config
