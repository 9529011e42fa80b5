"""The tiny preset learns on a CPU core, writes TensorBoard logs, and exports a model nn~ hosts can load."""

import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from training_fixtures import QUICK

from ravelive.cli import main
from ravelive.models.nn_model import NNModel
from ravelive.training.loop import train_run
from ravelive.training.tensorboard_log import spectrogram_image

STEPS = 250


@pytest.fixture(scope="module")
def trained(sines, tmp_path_factory):
    run = tmp_path_factory.mktemp("tiny") / "run"
    start = time.perf_counter()
    result = train_run(sines, run, ("tiny",), QUICK + (f"steps={STEPS}", f"checkpoint_interval={STEPS}"))
    seconds = time.perf_counter() - start
    print(f"tiny: {STEPS} steps in {seconds:.1f} s ({STEPS / seconds:.2f} steps/s)")
    return run, result


def test_spectral_loss_goes_down(trained):
    _, result = trained
    spectral = [losses["spectral"] for losses in result.losses]
    assert result.step == len(spectral) == STEPS
    first, last = np.mean(spectral[:20]), np.mean(spectral[-20:])
    print(f"spectral loss: first 20 steps {first:.2f}, last 20 {last:.2f}")
    assert last < 0.8 * first
    assert "discriminator" not in result.losses[-1]  # phase 2 starts at a million steps by default


def test_tensorboard_event_files_are_written(trained):
    run, _ = trained
    events = list((run / "logs").glob("events.out.tfevents.*"))
    assert events and all(event.stat().st_size > 0 for event in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run / "logs"), size_guidance={"images": 0, "audio": 0}).Reload()
    tags = accumulator.Tags()
    assert {"train/spectral", "train/multiband", "train/regularization", "train/beta"} <= set(tags["scalars"])
    assert len(accumulator.Scalars("train/spectral")) == STEPS // 5
    assert {"audio/input", "audio/reconstruction"} <= set(tags["audio"])
    assert tags["images"] == ["spectrogram/input | reconstruction"]


def test_export_writes_a_model_the_loader_plays(trained, tmp_path):
    run, _ = trained
    out = tmp_path / "tiny.ts"
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "forward realtime factor" in result.output and "latency" in result.output
    model = NNModel.load(out)
    assert set(model.methods) == {"encode", "decode", "forward", "prior"} and set(model.attributes) == {"gain"}
    assert model.metadata["config"]["latent_dims"] == 8
    assert model.metadata["training"]["step"] == model.metadata["training"]["config"]["steps"] > 0


def test_spectrogram_image_puts_input_left_and_low_frequencies_low():
    t = torch.arange(8192) / 44100
    low, high = torch.sin(2 * torch.pi * 200 * t), torch.sin(2 * torch.pi * 15000 * t)
    image = spectrogram_image(low, high)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    width = (image.shape[1] - 2) // 2
    left, right = image[:, :width, 0].astype(float), image[:, -width:, 0].astype(float)
    rows = np.arange(image.shape[0])[:, None]
    assert (left * rows).sum() / left.sum() > (right * rows).sum() / right.sum()  # 200 Hz sits lower


def test_the_trained_model_plays_in_info_process_generate_and_serve(trained, sines, tmp_path):
    import subprocess
    import sys

    import soundfile

    run, _ = trained
    model = tmp_path / "tiny.ts"
    assert CliRunner().invoke(main, ["export", str(run), "--out", str(model)]).exit_code == 0
    info = CliRunner().invoke(main, ["info", str(model)])
    assert info.exit_code == 0 and "forward" in info.output and "44100 Hz" in info.output
    source = sorted(sines.glob("*.wav"))[0]
    processed = CliRunner().invoke(main, ["process", str(source), "--model", str(model), "--out", str(tmp_path / "p.wav")])
    assert processed.exit_code == 0, processed.output
    from_run = CliRunner().invoke(main, ["generate", str(run), str(sines), "--out", str(tmp_path / "from_run")])
    from_file = CliRunner().invoke(main, ["generate", str(model), str(source), "--out", str(tmp_path / "from_file")])
    assert from_run.exit_code == 0 and from_file.exit_code == 0, from_run.output + from_file.output
    assert len(list((tmp_path / "from_run").glob("*.wav"))) == len(list(sines.glob("*.wav")))
    original, _ = soundfile.read(source, dtype="float32")
    through_run, _ = soundfile.read(tmp_path / "from_run" / source.name, dtype="float32")
    through_file, _ = soundfile.read(tmp_path / "from_file" / source.name, dtype="float32")
    through_process, _ = soundfile.read(tmp_path / "p.wav", dtype="float32")
    assert len(through_run) == len(original) and np.isfinite(through_run).all() and np.abs(through_run).max() > 1e-3
    np.testing.assert_array_equal(through_run, through_file)  # a run folder plays as its export does
    np.testing.assert_array_equal(through_file, through_process)  # the engine of process
    served = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(model), "--device", "none", "--input", str(source),
         "--output", str(tmp_path / "served.wav"), "--duration", "2", "--no-osc", "--no-realtime"],
        capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr
    played, _ = soundfile.read(tmp_path / "served.wav", dtype="float32")
    assert np.isfinite(played).all() and np.abs(played).max() > 1e-3
