"""`ravelive export RUN` options: latent PCA and --fidelity, --dataset, --samplerate, --streaming/--no-streaming."""

import shutil

import pytest
import torch
from click.testing import CliRunner
from training_fixtures import quick_run

from ravelive.cli import main
from ravelive.models.nn_model import NNModel
from ravelive.models.rave import export_rave
from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.export import export_checkpoint

@pytest.fixture(scope="module")
def run(sines, tmp_path_factory):
    return quick_run(sines, tmp_path_factory.mktemp("export"))


def export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def stream(model: NNModel, method: str, x: torch.Tensor, block: int) -> torch.Tensor:
    model.module.reset()
    with torch.inference_mode():
        return torch.cat([model(method, x[:, :, i : i + block]) for i in range(0, x.shape[-1], block)], -1)


def test_the_run_records_its_dataset(run, sines):
    assert load_checkpoint(run)["dataset"] == str(sines.resolve())


@pytest.mark.parametrize("fidelity", [0.5, 0.95, 0.999])
def test_fidelity_keeps_the_fewest_principal_dims_that_reach_it(run, tmp_path, fidelity):
    result = export(run, "--out", tmp_path / "m.ts", "--fidelity", fidelity)
    assert result.exit_code == 0, result.output
    model = NNModel.load(tmp_path / "m.ts")
    latent = model.metadata["latent"]
    curve = latent["fidelity_curve"]
    kept = next(i + 1 for i, reached in enumerate(curve) if reached >= fidelity)
    assert latent["pca"] is True and latent["fidelity"] == fidelity and latent["kept"] == kept
    assert len(curve) == latent["dims"] == 8 and curve == sorted(curve) and curve[-1] == pytest.approx(1.0)
    assert latent["kept_fidelity"] == curve[kept - 1] >= fidelity
    assert model.methods["encode"].params == (1, 1, kept, 32) and model.methods["decode"].params == (kept, 32, 1, 1)
    assert f"latent   {kept} of 8 dims (fidelity {fidelity})" in result.output


def test_with_every_dim_kept_the_pca_export_reconstructs_as_the_plain_one(run, tmp_path):
    rotated = NNModel.load(export_checkpoint(run, tmp_path / "rotated.ts", fidelity=1.0).path)
    checkpoint = load_checkpoint(run)
    plain = NNModel.load(export_rave(checkpoint["config"].model, tmp_path / "plain.ts", state_dict=checkpoint["model"]))
    assert rotated.metadata["latent"]["pca"] is True and rotated.metadata["latent"]["kept"] == 8
    x = 0.5 * torch.randn(2, 1, 32 * 50, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(stream(rotated, "forward", x, 64), stream(plain, "forward", x, 64), rtol=0, atol=1e-5)


def test_the_encoded_latent_is_centred_on_the_principal_axes(run, sines, tmp_path):
    model = NNModel.load(export_checkpoint(run, tmp_path / "m.ts", fidelity=1.0).path)
    import soundfile

    audio = [soundfile.read(path, dtype="float32")[0] for path in sorted(sines.glob("*.wav"))]
    frames = min(len(a) for a in audio) // 32 * 32
    x = torch.stack([torch.from_numpy(a[:frames]) for a in audio])[:, None]
    with torch.inference_mode():
        z = model.module.encode(x).transpose(1, 2).reshape(-1, 8)
    variances = z.var(0)
    assert z.mean(0).abs().max() < 0.2 * variances.max().sqrt()  # centred (the fit saw other crops)
    assert variances[0] > variances[-1]  # ordered by variance


def test_a_dataset_that_is_gone_exports_every_dim_unrotated_and_says_so(sines, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sines, data)
    run = quick_run(data, tmp_path)
    shutil.rmtree(data)
    result = export(run, "--out", tmp_path / "m.ts")
    assert result.exit_code == 0, result.output
    assert f"the run's dataset {data.resolve()} is gone: exported all 8 latent dims unrotated; pass --dataset PATH" \
        in result.output
    latent = NNModel.load(tmp_path / "m.ts").metadata["latent"]
    assert latent == {"dims": 8, "kept": 8, "pca": False, "digest": latent["digest"]}
    assert export(run, "--out", tmp_path / "d.ts", "--dataset", sines, "--fidelity", 0.5).exit_code == 0
    assert NNModel.load(tmp_path / "d.ts").metadata["latent"]["pca"] is True


@pytest.mark.parametrize("fidelity", ["0", "1.2"])
def test_a_fidelity_outside_0_1_is_one_line(run, tmp_path, fidelity):
    result = export(run, "--out", tmp_path / "m.ts", "--fidelity", fidelity)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: --fidelity {float(fidelity)}: expected a share of the latent variance " \
                                    "in (0, 1], e.g. 0.95"
    assert not (tmp_path / "m.ts").exists()


def test_a_whole_multiple_of_the_rate_is_exported_resampled(run, tmp_path):
    result = export(run, "--out", tmp_path / "m.ts", "--samplerate", 88200)
    assert result.exit_code == 0, result.output
    model = NNModel.load(tmp_path / "m.ts")
    assert model.sample_rate == 88200 and model.metadata["training_sample_rate"] == 44100
    assert model.methods["encode"].params[3] == 64


def test_another_rate_is_refused_naming_both_and_the_allowed_ones(run, tmp_path):
    result = export(run, "--out", tmp_path / "m.ts", "--samplerate", 48000)
    assert result.exit_code == 1
    assert "--samplerate 48000: the model was trained at 44100 Hz" in result.output
    assert "export at 44100, 88200, 132300, 176400 ... Hz" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "m.ts").exists()


def test_a_non_streaming_export_is_marked_and_process_refuses_it(run, sines, tmp_path):
    result = export(run, "--out", tmp_path / "m.ts", "--no-streaming")
    assert result.exit_code == 0, result.output
    assert "not streaming (serve refuses it; re-export with --streaming)" in result.output
    assert "realtime factor" not in result.output
    metadata = NNModel.load(tmp_path / "m.ts").metadata
    assert metadata["streaming"] is False and metadata["format_version"] == 2
    source = sorted(sines.glob("*.wav"))[0]
    processed = CliRunner().invoke(main, ["process", str(source), "--model", str(tmp_path / "m.ts"),
                                          "--out", str(tmp_path / "p.wav")])
    assert processed.exit_code == 1
    assert "was exported with --no-streaming" in processed.output and "re-export with --streaming" in processed.output
