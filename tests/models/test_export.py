"""Exports: the nn~ layout read back, ravelive.json, save-then-verify (the bundled model: test_default_model.py)."""

import json

import pytest
import torch

from ravelive.dsp.cached_conv import CachedConv1d
from ravelive.errors import ConfigError, ModelAttributeError, ModelRuntimeError
from ravelive.models.attributes import AttributeType
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.models.export import FORMAT_VERSION, ContractModule, export_model
from ravelive.models.nn_model import NNModel
from ravelive.models.torchscript import load_scripted

SMALL = AutoencoderConfig(strides=(4, 2), channels=8, latent_dims=4, causal=False)



@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    return export_autoencoder(SMALL, tmp_path_factory.mktemp("export") / "small.ts", seed=3)


def stream(model, method, x, frames_per_call):
    model.module.reset()
    with torch.inference_mode():
        calls = [model(method, x[:, :, i : i + frames_per_call]) for i in range(0, x.shape[-1], frames_per_call)]
    return torch.cat(calls, -1)


def test_export_reads_back_as_the_nn_contract(small_export):
    model = NNModel.load(small_export)
    assert {name: spec.params for name, spec in model.methods.items()} == {
        "encode": (1, 1, 4, 8),
        "decode": (4, 8, 1, 1),
        "forward": (1, 1, 1, 1),
        "prior": (1, 8, 4, 8),
    }
    assert model.methods["encode"].output_labels == tuple(f"(signal) latent {i}" for i in range(4))
    assert model.attributes["gain"].types == (AttributeType.FLOAT,)
    assert model.get_attribute("gain") == (1.0,)
    assert model.sample_rate == 48000
    assert model.minimum_block() == 8
    assert model.supports_batch()


def test_export_has_the_layout_nn_tilde_writes(small_export):
    module = load_scripted(small_export)
    assert module.get_methods() == ["encode", "decode", "forward", "prior"]
    assert module.forward_params.dtype == torch.int64
    assert module.decode_params.tolist() == [4, 8, 1, 1]
    assert module.forward_input_labels == ["(signal) audio"]
    assert module.get_attributes() == ["gain"]
    assert module.gain_params.tolist() == [2]
    assert module.sr == 48000 and module.get_sample_rate() == 48000
    assert module.set_gain(2.0) == 0 and module.get_gain() == (2.0,)
    assert module.set_gain(-1.0) == 1


def test_setter_refusal_reaches_the_host(small_export):
    model = NNModel.load(small_export)
    with pytest.raises(ModelAttributeError, match=r"refused gain = .*9\.0.*returned 1"):
        model.set_attribute("gain", 9.0)


def test_metadata_describes_delays_and_config(small_export):
    metadata = NNModel.load(small_export).metadata
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["sample_rate"] == 48000
    assert metadata["block_multiple"] == 8
    assert metadata["config"] == json.loads(json.dumps(SMALL.to_dict()))
    forward = metadata["methods"]["forward"]
    assert forward["delay"] == metadata["methods"]["encode"]["delay"] + metadata["methods"]["decode"]["delay"] > 0
    assert metadata["methods"]["prior"]["deterministic"] is False


def test_exported_file_streams_the_same_in_any_block_multiple(small_export):
    model = NNModel.load(small_export)
    x = 0.5 * torch.randn(2, 1, 8 * 120, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(stream(model, "forward", x, 8), stream(model, "forward", x, 8 * 40), rtol=0, atol=1e-5)


class MisdeclaredDelay(ContractModule):
    """Declares delay 0 for a centred conv that really streams 2 samples late."""

    def __init__(self, streaming: bool) -> None:
        super().__init__(48000)
        self.conv = CachedConv1d(1, 1, 5, causal=False, streaming=streaming)
        self.register_method("forward", [1, 1, 1, 1], ["in"], ["out"], delay=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


def test_failed_verification_leaves_no_file(tmp_path):
    torch.manual_seed(0)
    offline, streaming = MisdeclaredDelay(streaming=False), MisdeclaredDelay(streaming=True)
    streaming.load_state_dict(offline.state_dict())
    with pytest.raises(ModelRuntimeError, match="'forward' .* differs from its offline output delayed by 0 samples"):
        export_model(streaming, tmp_path / "bad.ts", offline=offline)
    assert list(tmp_path.iterdir()) == []


def test_without_an_offline_twin_blocks_are_checked_against_one_call(tmp_path):
    # the misdeclared delay goes unnoticed, but the file must still stream the same in any block
    path = export_model(MisdeclaredDelay(streaming=True), tmp_path / "blocks.ts")
    assert NNModel.load(path).metadata["methods"]["forward"]["delay"] == 0


def test_export_into_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="the folder .*missing does not exist"):
        export_model(MisdeclaredDelay(streaming=True), tmp_path / "missing" / "model.ts")


def test_attribute_needs_its_accessors():
    module = MisdeclaredDelay(streaming=True)
    with pytest.raises(TypeError, match="attribute 'volume' needs a method get_volume"):
        module.register_attribute("volume", [AttributeType.FLOAT])


def test_method_needs_one_label_per_channel():
    module = MisdeclaredDelay(streaming=True)
    with pytest.raises(ValueError, match="1 input / 1 output labels for 2 / 1 channels"):
        module.register_method("mix", [2, 1, 1, 1], ["a"], ["b"], delay=0)


def test_delay_must_be_whole_output_frames():
    module = MisdeclaredDelay(streaming=True)
    with pytest.raises(ValueError, match="delay 3 is not a whole number of output frames of 2"):
        module.register_method("half", [1, 1, 1, 2], ["a"], ["b"], delay=3)


def test_rave_like_fixture_has_ratio_2048_and_rave_attributes(rave_like_model):
    model = NNModel.load(rave_like_model)
    assert model.methods["encode"].params == (1, 1, 8, 2048)
    assert model.methods["decode"].params == (8, 2048, 1, 1)
    assert set(model.methods) == {"encode", "decode", "forward", "prior"}
    assert model.minimum_block() == 2048
    assert model.get_attribute("learn_target") == (False,)
    model.set_attribute("reset_target", "true")
    assert model.get_attribute("reset_target") == (True,)
    assert model.metadata["methods"]["forward"]["delay"] == 13600
