"""`ravelive train-prior MODEL LATENTS`: the tiny prior learns the corpus, steps as it trains, resumes bit for bit,
refuses a model that did not encode the corpus, bad input."""

import pytest
import torch
from click.testing import CliRunner
from latent_fixtures import LENGTH, TRAIN_STEPS

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.prior import Prior
from ravelive.generation.prior_config import build_prior_config
from ravelive.generation.prior_training import PRIOR, train_prior
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.training.checkpoint import load_checkpoint

TINY = ["tiny"]


def test_the_untrained_prior_predicts_the_normalised_marginal():
    prior = Prior(8, build_prior_config(TINY))
    mean, log_std = prior(torch.randn(3, 8, LENGTH))
    assert mean.shape == log_std.shape == (3, 8, LENGTH)
    assert torch.all(mean == 0) and torch.all(log_std == 0)  # N(0, 1): what a normalised corpus looks like


@pytest.mark.parametrize("frames_per_call", [1, 3, LENGTH])
def test_stepping_frame_by_frame_predicts_what_teacher_forcing_predicts(frames_per_call):
    torch.manual_seed(0)
    prior = Prior(8, build_prior_config(TINY, ["layers=2"]))
    torch.nn.init.normal_(prior.head.weight, std=0.1)  # not the zero start: something to compare
    z = torch.randn(2, 8, LENGTH)
    mean, log_std = prior(z)
    state = torch.zeros(2, 2, 64)
    previous = torch.zeros(2, 8)
    stepped = []
    for start in range(0, LENGTH, frames_per_call):  # calls of any size: the state carries over
        for t in range(start, min(start + frames_per_call, LENGTH)):
            step_mean, step_log_std, state = prior.step(previous, state)
            stepped.append((step_mean, step_log_std))
            previous = z[:, :, t]
    torch.testing.assert_close(torch.stack([m for m, _ in stepped], -1), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.stack([s for _, s in stepped], -1), log_std, rtol=1e-5, atol=1e-5)


def test_training_writes_a_checkpoint_with_what_export_needs(prior_run):
    checkpoint = load_checkpoint(prior_run, PRIOR)
    assert checkpoint["step"] == TRAIN_STEPS
    assert checkpoint["config"] == build_prior_config(TINY, [f"steps={TRAIN_STEPS}", "device=cpu"])
    assert checkpoint["corpus"]["model"]["dims"] == 8 and len(checkpoint["corpus"]["mean"]) == 8
    assert build_prior_config([str(prior_run / "config.toml")]) == checkpoint["config"]  # reusable
    assert list((prior_run / "logs").iterdir())  # TensorBoard events


def test_the_trained_prior_explains_the_corpus_better_than_the_untrained_one(latents_dir, prior_run):
    z = torch.from_numpy(LatentCorpus.open(latents_dir).sequences()[:].copy())
    checkpoint = load_checkpoint(prior_run, PRIOR)
    trained, untrained = Prior(8, checkpoint["config"]), Prior(8, checkpoint["config"])
    trained.load_state_dict(checkpoint["model"])
    with torch.inference_mode():
        trained_nll, untrained_nll = trained.nll(z).item(), untrained.nll(z).item()
    print(f"NLL per frame and dimension: trained {trained_nll:.3f} nats, untrained {untrained_nll:.3f}")
    assert trained_nll < untrained_nll - 0.5  # half a nat per value: clearly learnt, not noise


def test_resume_continues_bit_for_bit_and_refuses_a_disagreeing_key(model_file, latents_dir, tmp_path):
    straight = train_prior(model_file, latents_dir, tmp_path / "straight", TINY, ["steps=12", "device=cpu"])
    train_prior(model_file, latents_dir, tmp_path / "halves", TINY, ["steps=6", "device=cpu"])
    with pytest.raises(ConfigError, match=r"--set hidden=32 disagrees with the checkpoint's hidden=64"):
        train_prior(model_file, latents_dir, tmp_path / "halves", (), ["steps=12", "hidden=32"], resume=True)
    resumed = train_prior(model_file, latents_dir, tmp_path / "halves", (), ["steps=12"], resume=True)
    assert resumed.losses == straight.losses[6:]
    for name, value in straight.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[name]), name


def test_bad_input_is_one_line_each(model_file, latents_dir, tmp_path):
    with pytest.raises(ConfigError, match="not a latent corpus; make one with `ravelive latents`"):
        train_prior(model_file, tmp_path, tmp_path / "run", TINY)
    with pytest.raises(ConfigError, match=r"no checkpoint.pt in it .* ravelive train-prior MODEL LATENTS --out"):
        train_prior(model_file, latents_dir, tmp_path / "never", TINY, resume=True)
    with pytest.raises(ConfigError, match="unknown prior key 'hiden'; did you mean 'hidden'"):
        train_prior(model_file, latents_dir, tmp_path / "run", TINY, ["hiden=4"])
    with pytest.raises(ConfigError, match="prior config layers = 0: expected a positive integer"):
        train_prior(model_file, latents_dir, tmp_path / "run", TINY, ["layers=0"])


@pytest.mark.parametrize(("changes", "found"), [({"latent_dims": 4}, "4 latents at ratio 512, 48000 Hz"),
                                                ({"sample_rate": 44100}, "8 latents at ratio 512, 44100 Hz")])
def test_a_model_that_did_not_encode_the_corpus_is_refused_naming_both(model_file, latents_dir, tmp_path, changes,
                                                                         found):
    other = export_autoencoder(AutoencoderConfig(**changes), tmp_path / "other.ts", seed=1)
    with pytest.raises(ConfigError, match=rf"^other.ts decodes {found}, but .* holds 8 at ratio 512, 48000 Hz \(from "
                                          rf"ae.ts\): use that model, or encode the corpus again with `ravelive "
                                          rf"latents other.ts \.\.\.`$"):
        train_prior(other, latents_dir, tmp_path / "run", TINY)
    refused = CliRunner().invoke(main, ["train-prior", str(other), str(latents_dir), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and f"other.ts decodes {found}" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists()


def test_another_file_of_the_corpus_model_s_shape_trains_with_a_warning(model_file, latents_dir, tmp_path, caplog):
    twin = export_autoencoder(AutoencoderConfig(), tmp_path / "twin.ts", seed=4)  # the shape, other weights
    train_prior(model_file, latents_dir, tmp_path / "quiet", TINY, ["steps=1", "device=cpu"])
    assert not caplog.records
    result = train_prior(twin, latents_dir, tmp_path / "run", TINY, ["steps=1", "device=cpu"])
    assert result.step == 1
    (warning,) = caplog.records
    assert warning.levelname == "WARNING" and "was encoded by ae.ts (sha256 " in warning.getMessage()
    assert "not by twin.ts" in warning.getMessage() and "pass that model" in warning.getMessage()


def test_the_command_trains_and_says_what_to_do_next(model_file, latents_dir, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train-prior", str(model_file), str(latents_dir), "--out", str(run),
                                       "--config", "tiny", "--set", "steps=3", "--set", "device=cpu"])
    assert result.exit_code == 0, result.output
    assert f"trained {run} to step 3; export: ravelive export-prior {run} --out PRIOR.ts" in result.output
    refused = CliRunner().invoke(main, ["train-prior", str(model_file), str(run), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "not a latent corpus" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
