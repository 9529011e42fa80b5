"""RAVE export: the tiny preset exports under the nn~ contract, reloads with the loader, streams as built."""

import pytest
import torch

from ravelive.models.nn_model import NNModel
from ravelive.models.rave import RaveModel, export_rave, resolve_config
from ravelive.models.torchscript import load_scripted

TINY = resolve_config(["tiny"])


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    return export_rave(TINY, tmp_path_factory.mktemp("rave") / "tiny.ts", seed=3)


def test_tiny_reads_back_as_a_rave_export(tiny_export):
    model = NNModel.load(tiny_export)
    assert {name: spec.params for name, spec in model.methods.items()} == {
        "encode": (1, 1, 8, 32),
        "decode": (8, 32, 1, 1),
        "forward": (1, 1, 1, 1),
        "prior": (1, 32, 8, 32),
    }
    assert set(model.attributes) == {"gain"}
    assert model.sample_rate == 44100
    assert model.minimum_block() == 32
    assert model.supports_batch()
    described = model.metadata["methods"]
    assert {name: entry["delay"] for name, entry in described.items()} == RaveModel(TINY, streaming=True).delays
    # the noise is a hash of stream position, so export verified every method but the prior's random draws
    # against the offline model
    assert [name for name, entry in described.items() if not entry["deterministic"]] == ["prior"]
    assert model.metadata["architecture"] == "RaveModel"
    assert model.metadata["config"]["ratios"] == [4, 2]


def test_exported_encode_streams_like_the_python_model(tiny_export):
    module = load_scripted(tiny_export)
    torch.manual_seed(3)
    reference = RaveModel(TINY, streaming=True).eval()  # export_rave's weights: the same seed
    x = 0.5 * torch.randn(2, 1, 32 * 30, generator=torch.Generator().manual_seed(7))
    module.reset()
    with torch.inference_mode():
        exported = torch.cat([module.encode(x[:, :, i : i + 96]) for i in range(0, x.shape[-1], 96)], -1)
        expected = torch.cat([reference.encode(x[:, :, i : i + 96]) for i in range(0, x.shape[-1], 96)], -1)
    torch.testing.assert_close(exported, expected, rtol=0, atol=1e-6)


def test_exported_forward_plays_blocks_through_the_loader(tiny_export):
    model = NNModel.load(tiny_export)
    model.module.reset()
    x = 0.5 * torch.randn(1, 1, 32 * 40, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        y = torch.cat([model("forward", x[:, :, i : i + 64]) for i in range(0, x.shape[-1], 64)], -1)
    assert y.shape == x.shape and torch.isfinite(y).all()
    delay = model.metadata["methods"]["forward"]["delay"]
    assert torch.count_nonzero(y[:, :, :delay]) == 0 < torch.count_nonzero(y[:, :, delay:])


def test_export_takes_trained_weights(tmp_path):
    torch.manual_seed(11)
    trained = RaveModel(resolve_config(["tiny", "causal"]))
    path = export_rave(trained.config, tmp_path / "causal.ts", state_dict=trained.state_dict())
    model = NNModel.load(path)
    x = 0.5 * torch.randn(1, 1, 32 * 20, generator=torch.Generator().manual_seed(9))
    delay = model.metadata["methods"]["forward"]["delay"]
    model.module.reset()
    with torch.inference_mode():
        streamed = torch.cat([model("forward", x[:, :, i : i + 32]) for i in range(0, x.shape[-1], 32)], -1)
        offline = trained.eval()(x)
    torch.testing.assert_close(streamed[:, :, delay:], offline[:, :, :-delay], rtol=0, atol=1e-5)
