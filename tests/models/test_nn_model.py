"""NNModel: reading the contract, checked calls, batch probe, describe()."""

import json

import pytest
import torch

from nn_fixtures import CODEC_LATENT, CODEC_RATIO, ENVELOPE_RATIO
from ravelive.errors import ModelRuntimeError
from ravelive.models.nn_model import MethodSpec, NNModel


@pytest.fixture
def noise():
    return torch.randn(1, 1, 8 * CODEC_RATIO, generator=torch.Generator().manual_seed(0))


def test_identity_method_spec_and_labels(identity_model_path):
    model = NNModel.load(identity_model_path)
    assert model.methods == {
        "forward": MethodSpec("forward", 1, 1, 1, 1, ("(signal) input",), ("(signal) output",))
    }
    assert model.sample_rate is None


def test_identity_returns_its_input(identity_model_path, noise):
    model = NNModel.load(identity_model_path)
    assert torch.equal(model("forward", noise), noise)


def test_labels_default_to_channel_numbers(two_inputs_model_path):
    forward = NNModel.load(two_inputs_model_path).methods["forward"]
    assert (forward.input_labels, forward.output_labels) == (("in 0",), ("out 0",))


def test_method_with_two_inputs(two_inputs_model_path):
    model = NNModel.load(two_inputs_model_path)
    x = torch.stack([torch.full((16,), 0.5), torch.full((16,), 4.0)]).unsqueeze(0)
    assert model.methods["mix"].input_labels == ("(signal) audio", "(signal) gain")
    assert torch.equal(model("mix", x), torch.full((1, 1, 16), 2.0))


def test_methods_at_different_ratios(codec_model_path):
    model = NNModel.load(codec_model_path)
    assert {name: spec.params for name, spec in model.methods.items()} == {
        "encode": (1, 1, CODEC_LATENT, CODEC_RATIO),
        "decode": (CODEC_LATENT, CODEC_RATIO, 1, 1),
        "forward": (1, 1, 1, 1),
    }
    assert model.sample_rate == 48000


@pytest.mark.parametrize(
    ("methods", "block"), [(None, CODEC_RATIO), (["forward"], 1), (["encode", "decode"], CODEC_RATIO)]
)
def test_minimum_block(codec_model_path, methods, block):
    assert NNModel.load(codec_model_path).minimum_block(methods) == block


def test_minimum_block_is_a_multiple_of_every_ratio(no_get_methods_model_path):
    assert NNModel.load(no_get_methods_model_path).minimum_block() == 2


def test_streaming_state_carries_across_blocks(codec_model_path, noise):
    whole = NNModel.load(codec_model_path)("encode", noise)
    streamed = NNModel.load(codec_model_path)
    blocks = [streamed("encode", block) for block in noise.split(2 * CODEC_RATIO, dim=-1)]
    assert torch.allclose(torch.cat(blocks, -1), whole, atol=1e-6)


def test_control_rate_output(control_rate_model_path):
    model = NNModel.load(control_rate_model_path)
    y = model("envelope", torch.ones(1, 1, 4 * ENVELOPE_RATIO))
    assert torch.allclose(y, torch.ones(1, 2, 4))
    assert model.methods["envelope"].output_labels == ("(signal) rms", "(signal) peak")


def test_model_without_get_methods_uses_params_buffers(no_get_methods_model_path):
    model = NNModel.load(no_get_methods_model_path)
    assert sorted(model.methods) == ["forward", "halve"]
    assert model.methods["halve"].params == (1, 1, 1, 2)
    assert model.sample_rate == 22050  # from get_sample_rate()


def test_sample_rate_from_sr(sr44100_model_path):
    assert NNModel.load(sr44100_model_path).sample_rate == 44100


def test_model_that_raises_is_reported_in_one_line(raising_model_path):
    model = NNModel.load(raising_model_path)
    with pytest.raises(ModelRuntimeError, match=r"raising\.ts: method 'forward' raised: ValueError: this model always fails$"):
        model("forward", torch.zeros(1, 1, 8))


def test_output_breaking_params_is_reported(bad_output_model_path):
    model = NNModel.load(bad_output_model_path)
    with pytest.raises(ModelRuntimeError, match=r"returned shape \[1, 1, 4\], its forward_params \[1, 1, 1, 1\] require \[1, 1, 8\]"):
        model("forward", torch.zeros(1, 1, 8))


def test_wrong_input_channels_are_refused(two_inputs_model_path):
    model = NNModel.load(two_inputs_model_path)
    with pytest.raises(ModelRuntimeError, match=r"method 'mix' takes \[batch, 2, frames\], got \[1, 1, 8\]"):
        model("mix", torch.zeros(1, 1, 8))


def test_wrong_dtype_is_refused(identity_model_path):
    model = NNModel.load(identity_model_path)
    with pytest.raises(ModelRuntimeError, match=r"takes float32 input, got torch\.float64"):
        model("forward", torch.zeros(1, 1, 8, dtype=torch.float64))


def test_block_not_a_multiple_of_output_ratio_is_refused(control_rate_model_path):
    model = NNModel.load(control_rate_model_path)
    with pytest.raises(ModelRuntimeError, match=r"48 input frames make a block of 48 samples, not a multiple of its output ratio 32; use a multiple of 32"):
        model("envelope", torch.zeros(1, 1, 48))


def test_unknown_method_lists_the_methods(codec_model_path):
    model = NNModel.load(codec_model_path)
    with pytest.raises(ModelRuntimeError, match=r"no method 'prior'; this model has: encode, decode, forward"):
        model("prior", torch.zeros(1, 1, CODEC_RATIO))


def test_batch_probe(identity_model_path, codec_model_path):
    assert NNModel.load(identity_model_path).supports_batch()
    assert not NNModel.load(codec_model_path).supports_batch()  # state has batch 1, like cached_conv


def test_batch_probe_leaves_the_stream_alone(codec_model_path, noise):
    whole = NNModel.load(codec_model_path)("encode", noise)
    model = NNModel.load(codec_model_path)
    first, second = noise.split(noise.shape[-1] // 2, dim=-1)
    head = model("encode", first)
    assert not model.supports_batch("encode")
    tail = model("encode", second)
    assert torch.allclose(torch.cat([head, tail], -1), whole, atol=1e-6)


def test_describe_is_json_ready(codec_model_path):
    description = json.loads(json.dumps(NNModel.load(codec_model_path).describe()))
    assert description["path"] == str(codec_model_path)
    assert description["sample_rate"] == 48000
    assert description["minimum_block"] == CODEC_RATIO
    assert description["supports_batch"] is False
    assert description["methods"]["encode"] == {
        "params": [1, 1, CODEC_LATENT, CODEC_RATIO],
        "input_labels": ["(signal) audio"],
        "output_labels": [f"(signal) latent {i}" for i in range(CODEC_LATENT)],
    }
    assert description["attributes"] == {}
    assert description["metadata"] is None


def test_describe_includes_metadata(metadata_model_path):
    assert NNModel.load(metadata_model_path).describe()["metadata"] == {"format_version": 1, "name": "identity"}


def test_outputs_at_control_rate_or_labelled_latents_are_not_audio(codec_model_path, control_rate_model_path):
    codec = NNModel.load(codec_model_path)
    assert {name: spec.outputs_audio for name, spec in codec.methods.items()} == {
        "encode": False, "decode": True, "forward": True}
    assert not NNModel.load(control_rate_model_path).methods["envelope"].outputs_audio
    latents_at_audio_rate = MethodSpec("embed", 1, 1, 2, 1, ("audio",), ("(signal) latent 0", "(signal) latent 1"))
    assert not latents_at_audio_rate.outputs_audio
    assert codec.methods["encode"].describe_output() == "4 channels at 1/64 of the audio rate"


def test_reset_state_calls_the_models_own_reset_only(codec_model_path, identity_model_path):
    assert NNModel.load(codec_model_path).reset_state()  # StreamingCodec.reset() clears its caches
    assert not NNModel.load(identity_model_path).reset_state()


def test_delay_is_ravelive_json_s_and_0_where_a_file_does_not_state_it(rave_like_model, codec_model_path):
    model = NNModel.load(rave_like_model)
    assert (model.delay("encode"), model.delay("decode"), model.delay("forward")) == (8192, 5408, 13600)
    assert NNModel.load(codec_model_path).delay("decode") == 0  # no ravelive.json: not known, taken as none
