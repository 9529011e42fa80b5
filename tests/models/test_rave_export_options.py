"""RAVE export options: latent PCA (kept dims, invertible rotation), in-model resampling, non-streaming files."""

import pytest
import torch

from ravelive.errors import ConfigError
from ravelive.models.nn_model import NNModel
from ravelive.models.rave import RaveModel, export_rave, resolve_config
from ravelive.models.rave.latent_pca import LatentPCA
from ravelive.models.rave.model import resampling_factor

TINY = resolve_config(["tiny"])  # 8 latent dims, ratio 32, 44.1 kHz


def random_pca(dims: int, seed: int) -> LatentPCA:
    """An orthogonal rotation and an offset, with a fidelity curve that reaches 0.95 at 3 dims."""
    generator = torch.Generator().manual_seed(seed)
    components, _ = torch.linalg.qr(torch.randn(dims, dims, generator=generator))
    curve = (0.6, 0.9, 0.96, 0.98, 0.99, 0.995, 0.999, 1.0)[:dims]
    return LatentPCA(torch.randn(dims, generator=generator), components, curve, examples=10)


def stream(model: NNModel, method: str, x: torch.Tensor, block: int) -> torch.Tensor:
    model.module.reset()
    with torch.inference_mode():
        return torch.cat([model(method, x[:, :, i : i + block]) for i in range(0, x.shape[-1], block)], -1)


@pytest.mark.parametrize(("fidelity", "kept"), [(0.5, 1), (0.9, 2), (0.95, 3), (0.999, 7), (1.0, 8)])
def test_fidelity_keeps_the_fewest_dims_that_reach_it(fidelity, kept):
    assert random_pca(8, 0).with_fidelity(fidelity).kept == kept


@pytest.mark.parametrize("fidelity", [0.0, -0.1, 1.5])
def test_a_fidelity_outside_0_1_is_refused(fidelity):
    with pytest.raises(ConfigError, match=rf"--fidelity {fidelity}: expected a share .* in \(0, 1\]"):
        random_pca(8, 0).with_fidelity(fidelity)


def test_kept_dims_are_what_encode_and_decode_declare(tmp_path):
    pca = random_pca(8, 1).with_fidelity(0.95)
    model = NNModel.load(export_rave(TINY, tmp_path / "pca.ts", pca=pca, fidelity=0.95, seed=2))  # verified
    assert model.methods["encode"].params == (1, 1, 3, 32)
    assert model.methods["decode"].params == (3, 32, 1, 1)
    assert len(model.methods["encode"].output_labels) == 3
    latent = model.metadata["latent"]
    assert latent == {"dims": 8, "kept": 3, "pca": True, "fidelity": 0.95, "fidelity_curve": list(pca.fidelity),
                      "kept_fidelity": 0.96, "examples": 10, "padding": "zeros", "digest": latent["digest"]}
    assert model.metadata["streaming"] is True and model.metadata["format_version"] == 2


def test_with_every_dim_kept_the_rotation_changes_no_reconstruction(tmp_path):
    plain = NNModel.load(export_rave(TINY, tmp_path / "plain.ts", seed=4))
    rotated = NNModel.load(export_rave(TINY, tmp_path / "rotated.ts", pca=random_pca(8, 5), fidelity=1.0, seed=4))
    digest = plain.metadata["latent"]["digest"]
    assert plain.metadata["latent"] == {"dims": 8, "kept": 8, "pca": False, "digest": digest}
    assert rotated.metadata["latent"]["digest"] != digest  # the same weights, other latents
    x = 0.5 * torch.randn(1, 1, 32 * 40, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(stream(rotated, "forward", x, 64), stream(plain, "forward", x, 64), rtol=0, atol=1e-5)
    # encode rotates: the latents differ, but decode undoes it
    assert not torch.allclose(stream(rotated, "encode", x, 64), stream(plain, "encode", x, 64), atol=1e-3)


def test_an_export_at_twice_the_rate_resamples_inside_and_reports_the_extra_delay(tmp_path):
    native = RaveModel(TINY, streaming=True)
    model = NNModel.load(export_rave(TINY, tmp_path / "88k.ts", sample_rate=88200, seed=7))  # verified
    assert model.sample_rate == 88200 and model.metadata["training_sample_rate"] == 44100
    assert model.methods["encode"].params == (1, 1, 8, 64)
    assert model.minimum_block() == 64
    delays = {name: entry["delay"] for name, entry in model.metadata["methods"].items()}
    assert delays.pop("prior") == 0  # drawn, not streamed from audio: no delay to resample
    for name, delay in delays.items():  # at least the native delay in 88.2 kHz samples, plus the filters'
        assert delay > 2 * native.delays[name]
    x = 0.5 * torch.randn(2, 1, 64 * 30, generator=torch.Generator().manual_seed(8))
    y = stream(model, "forward", x, 64)
    assert y.shape == x.shape and torch.count_nonzero(y[:, :, : delays["forward"]]) == 0


@pytest.mark.parametrize("rate", [66150, 22050, 48000])
def test_a_rate_that_is_not_a_whole_multiple_is_refused(rate):
    with pytest.raises(ConfigError, match=rf"--samplerate {rate}: the model was trained at 44100 Hz .* "
                                          r"export at 44100, 88200, 132300, 176400"):
        resampling_factor(44100, rate)


def test_a_non_streaming_export_says_so_and_has_no_delay(tmp_path):
    model = NNModel.load(export_rave(TINY, tmp_path / "offline.ts", streaming=False, seed=9))  # verified
    assert model.metadata["streaming"] is False
    assert {entry["delay"] for entry in model.metadata["methods"].values()} == {0}
    x = 0.5 * torch.randn(1, 1, 32 * 20, generator=torch.Generator().manual_seed(10))
    offline = RaveModel(TINY)
    torch.manual_seed(9)
    offline.load_state_dict(RaveModel(TINY).state_dict())  # export_rave's initialisation: the same seed
    with torch.inference_mode():
        torch.testing.assert_close(model("forward", x), offline.eval()(x), rtol=0, atol=1e-5)


def test_serve_refuses_a_non_streaming_export_with_the_fix(tmp_path):
    import subprocess
    import sys

    import numpy as np
    import soundfile

    path = export_rave(TINY, tmp_path / "offline.ts", streaming=False, seed=9)
    soundfile.write(tmp_path / "in.wav", np.zeros(44100, dtype=np.float32), 44100)
    served = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(path), "--device", "none", "--input",
         str(tmp_path / "in.wav"), "--output", str(tmp_path / "out.wav"), "--duration", "1", "--no-osc",
         "--no-realtime"],
        capture_output=True, text=True, timeout=120)
    assert served.returncode == 1
    assert served.stderr.strip().splitlines()[-1] == (
        f"Error: {path} was exported with --no-streaming (plain convolutions, no cached state), so it cannot play "
        "in blocks: re-export with --streaming (ravelive export RUN --out MODEL.ts)")
    assert not (tmp_path / "out.wav").exists()
