"""Descriptor-conditioned RAVE models: decode takes one input per descriptor, forward follows its input's own."""

import pytest
import torch

from ravelive.errors import ConfigError
from ravelive.models.nn_model import NNModel
from ravelive.models.rave import RaveModel, export_rave, resolve_config
from ravelive.models.rave.latent_pca import LatentPCA

CONDITIONED = resolve_config(["tiny", "descriptors"])  # rms and centroid next to 8 latent dims, ratio 32
LOW, HIGH = torch.tensor([0.0, 200.0]), torch.tensor([0.5, 8000.0])


def conditioned_weights(config=CONDITIONED, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = RaveModel(config)
    model.conditioning[0].set_range(LOW, HIGH)
    return model.state_dict()


@pytest.mark.parametrize("presets", [["tiny", "descriptors"], ["tiny", "causal", "descriptors"]])
def test_export_streams_as_offline_and_declares_one_decode_input_per_descriptor(presets, tmp_path):
    config = resolve_config(presets)
    model = NNModel.load(export_rave(config, tmp_path / "d.ts", state_dict=conditioned_weights(config)))  # verified
    decode = model.methods["decode"]
    assert decode.params == (10, 32, 1, 1)
    assert decode.input_labels[-2:] == ("(signal) descriptor: rms", "(signal) descriptor: centroid")
    assert model.methods["forward"].params == (1, 1, 1, 1)  # forward measures them on its own input
    assert model.metadata["descriptors"] == {
        "names": ["rms", "centroid"], "hop": 32, "window": 64, "min": {"rms": 0.0, "centroid": 200.0},
        "max": {"rms": 0.5, "centroid": 8000.0}, "follow": "forward measures them on its input",
    }


def test_a_pca_export_keeps_the_descriptor_inputs_after_the_kept_dims(tmp_path):
    generator = torch.Generator().manual_seed(1)
    components, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    pca = LatentPCA(torch.randn(8, generator=generator), components, (0.6, 0.9, 0.96, 0.98, 0.99, 0.995, 0.999, 1.0),
                    examples=10).with_fidelity(0.95)
    path = export_rave(CONDITIONED, tmp_path / "pca.ts", state_dict=conditioned_weights(), pca=pca, fidelity=0.95)
    assert NNModel.load(path).methods["decode"].params == (3 + 2, 32, 1, 1)


def test_the_descriptor_inputs_change_the_decoded_sound():
    model = RaveModel(CONDITIONED).eval()
    z = torch.randn(1, 8, 20, generator=torch.Generator().manual_seed(2))
    low, high = (torch.cat([z, torch.full((1, 2, 20), value)], 1) for value in (-1.0, 1.0))
    with torch.no_grad():
        assert not torch.allclose(model.decode(low), model.decode(high), atol=1e-4)


def test_an_unconditioned_model_has_no_descriptor_state():
    assert not any("conditioning" in key for key in RaveModel(resolve_config(["tiny"])).state_dict())


def test_an_unknown_descriptor_is_refused_naming_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^descriptors loudness: expected one or more of rms, centroid, bandwidth, "
                                          r"flatness, rolloff, comma-separated \(--set descriptors=rms,centroid\)$"):
        resolve_config(["tiny"], {"descriptors": "rms,loudness"})


def test_a_descriptor_export_at_another_rate_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"--samplerate 88200: a descriptor-conditioned model exports at its training "
                                          r"rate \(44100 Hz\) only"):
        export_rave(CONDITIONED, tmp_path / "x.ts", sample_rate=88200)
