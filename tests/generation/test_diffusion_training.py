"""`ravelive train-diffusion`: the tiny denoiser learns, checkpoints, resumes bit for bit, refuses bad input."""

import pytest
import torch
from click.testing import CliRunner
from latent_fixtures import LENGTH, TRAIN_STEPS

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_config import build_diffusion_config
from ravelive.generation.diffusion_training import DIFFUSION, train_diffusion
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.sampling import TRAIN_TIMESTEPS, TrainingSchedule
from ravelive.training.checkpoint import load_checkpoint

TINY = ["tiny"]


def test_the_denoiser_keeps_the_shape_and_starts_predicting_zero():
    denoiser = Denoiser(8, build_diffusion_config(TINY))
    x = torch.randn(3, 8, LENGTH)
    v = denoiser(x, torch.tensor([0, 500, 999]))
    assert v.shape == x.shape and torch.all(v == 0)  # zero-initialised output: the identity at the start
    assert any(isinstance(m, torch.nn.Module) and type(m).__name__ == "SelfAttention" for m in denoiser.modules())


def test_training_writes_a_checkpoint_with_what_generation_needs(diffusion_run):
    checkpoint = load_checkpoint(diffusion_run, DIFFUSION)
    assert checkpoint["step"] == TRAIN_STEPS
    assert checkpoint["config"] == build_diffusion_config(TINY, [f"steps={TRAIN_STEPS}", "device=cpu"])
    assert checkpoint["corpus"]["length"] == LENGTH and checkpoint["corpus"]["model"]["dims"] == 8
    assert {"model", "optimizer", "rng", "ravelive_version"} <= set(checkpoint)
    assert (diffusion_run / "config.toml").read_text().count("channels = [16, 32, 32]") == 1
    assert build_diffusion_config([str(diffusion_run / "config.toml")]) == checkpoint["config"]  # reusable
    assert list((diffusion_run / "logs").iterdir())  # TensorBoard events


def test_the_trained_denoiser_predicts_the_velocity_better_than_the_untrained_one(latents_dir, diffusion_run):
    x0 = torch.from_numpy(LatentCorpus.open(latents_dir).sequences()[:].copy())
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(x0),), generator=generator)
    schedule = TrainingSchedule()
    checkpoint = load_checkpoint(diffusion_run, DIFFUSION)
    trained, untrained = Denoiser(8, checkpoint["config"]), Denoiser(8, checkpoint["config"])
    trained.load_state_dict(checkpoint["model"])

    def error(denoiser: Denoiser) -> float:
        with torch.inference_mode():
            v = denoiser(schedule.noisy(x0, noise, t), t)
        return torch.mean((v - schedule.training_target(x0, noise, t)) ** 2).item()

    assert error(trained) < 0.9 * error(untrained)


def test_resume_continues_bit_for_bit_and_refuses_a_disagreeing_key(latents_dir, tmp_path):
    straight = train_diffusion(latents_dir, tmp_path / "straight", TINY, ["steps=12", "device=cpu"])
    train_diffusion(latents_dir, tmp_path / "halves", TINY, ["steps=6", "device=cpu"])
    with pytest.raises(ConfigError, match=r"--set lr=0.5 disagrees with the checkpoint's lr=0.001"):
        train_diffusion(latents_dir, tmp_path / "halves", (), ["steps=12", "lr=0.5"], resume=True)
    resumed = train_diffusion(latents_dir, tmp_path / "halves", (), ["steps=12"], resume=True)
    assert resumed.losses == straight.losses[6:]
    for name, value in straight.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[name]), name


def test_bad_input_is_one_line_each(latents_dir, tmp_path):
    with pytest.raises(ConfigError, match="not a latent corpus; make one with `ravelive latents`"):
        train_diffusion(tmp_path, tmp_path / "run", TINY)
    with pytest.raises(ConfigError, match=r"no checkpoint.pt in it .* ravelive train-diffusion LATENTS --out"):
        train_diffusion(latents_dir, tmp_path / "never", TINY, resume=True)
    with pytest.raises(ConfigError, match=r"16 frames do not divide by the denoiser's downsampling 1x4x8 = 32"):
        train_diffusion(latents_dir, tmp_path / "run", TINY, ["factors=[1, 4, 8]"])
    with pytest.raises(ConfigError, match="unknown diffusion key 'chanels'; did you mean 'channels'"):
        train_diffusion(latents_dir, tmp_path / "run", TINY, ["chanels=[4]"])


def test_the_command_trains_and_says_what_to_do_next(latents_dir, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train-diffusion", str(latents_dir), "--out", str(run), "--config", "tiny",
                                       "--set", "steps=3", "--set", "device=cpu"])
    assert result.exit_code == 0, result.output
    assert f"trained {run} to step 3; generate: ravelive generate-latents {run}" in result.output
    refused = CliRunner().invoke(main, ["train-diffusion", str(run), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "not a latent corpus" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    refused = CliRunner().invoke(main, ["train-diffusion", str(latents_dir), "--out", str(tmp_path / "empty"),
                                        "--resume"])
    assert refused.exit_code == 1 and "no checkpoint.pt in it" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
