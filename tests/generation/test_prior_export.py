"""`ravelive export-prior`: an nn~ file whose `prior` streams latents for the corpus's model; bad input one line."""

from dataclasses import asdict

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from latent_fixtures import RATE, RATIO

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.generation.latents import LatentCorpus
from ravelive.generation.prior_export import export_prior
from ravelive.generation.prior_stream import MAX_TEMPERATURE
from ravelive.generation.prior_file import open_prior
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.models.nn_model import NNModel


@pytest.fixture(scope="module")
def prior_file(prior_run, tmp_path_factory):
    return export_prior(prior_run, tmp_path_factory.mktemp("prior") / "prior.ts").path


def test_the_file_follows_the_contract_and_names_its_model(prior_file, model_file, latents_dir):
    prior = NNModel.load(prior_file)
    assert list(prior.methods) == ["prior"]
    assert list(prior.methods["prior"].params) == [1, RATIO, 8, RATIO]
    assert prior.sample_rate == RATE
    corpus = LatentCorpus.open(latents_dir)
    assert prior.metadata["prior"]["model"] == asdict(corpus.model)
    assert prior.metadata["methods"]["prior"]["deterministic"] is False
    assert open_prior(prior_file, NNModel.load(model_file)).path == prior_file


def test_each_call_continues_the_sequence_and_reset_starts_it_again(prior_file):
    prior = NNModel.load(prior_file)
    zeros = torch.zeros(1, 1, 12)
    with torch.inference_mode():
        whole = prior("prior", zeros)
        prior.module.reset()
        halves = torch.cat([prior("prior", zeros[:, :, :5]), prior("prior", zeros[:, :, 5:])], -1)
        prior.module.reset()
        again = prior("prior", zeros)
    torch.testing.assert_close(halves, whole)
    torch.testing.assert_close(again, whole)  # temperature 0: the mean path, the same from every reset


def test_temperature_scales_the_randomness_and_the_frames_are_the_models_scale(prior_file, latents_dir):
    prior = NNModel.load(prior_file)
    corpus = LatentCorpus.open(latents_dir)
    torch.manual_seed(0)
    spread = {}
    with torch.inference_mode():
        for temperature in (0.0, 1.0, MAX_TEMPERATURE):
            prior.module.reset()
            runs = torch.stack([prior("prior", torch.full((4, 1, 40), temperature)) for _ in range(2)])
            assert torch.isfinite(runs).all()
            spread[temperature] = runs.std(dim=1).mean().item()  # across the 4 independent streams
    assert spread[0.0] == 0.0 < spread[1.0] < spread[MAX_TEMPERATURE]
    with torch.inference_mode():
        prior.module.reset()
        played = prior("prior", torch.ones(1, 1, 400))[0].numpy()
    # denormalised: the frames live where the corpus's latents do, not around 0 with unit variance
    mean, std = np.asarray(corpus.mean), np.asarray(corpus.std)
    assert np.all(np.abs(played.mean(axis=1) - mean) < 3 * std)


def test_bad_input_is_one_line_each(prior_run, prior_file, model_file, tmp_path):
    with pytest.raises(ConfigError, match=r"no checkpoint.pt in it .* train first: ravelive train-prior MODEL LATENTS"):
        export_prior(tmp_path, tmp_path / "p.ts")
    other = export_autoencoder(AutoencoderConfig(latent_dims=4), tmp_path / "other.ts", seed=1)
    with pytest.raises(ConfigError, match=r"other.ts decodes 4 latents at ratio 512, 48000 Hz, but prior.ts plays 8 "
                                          r"at ratio 512, 48000 Hz \(from ae.ts\): use that model, or train a prior"):
        open_prior(prior_file, NNModel.load(other))
    with pytest.raises(ConfigError, match=r"ae.ts: not a prior exported by `ravelive export-prior`"):
        open_prior(model_file, NNModel.load(model_file))


def test_the_command_exports_and_says_how_to_play_it(prior_run, tmp_path):
    out = tmp_path / "p.ts"
    result = CliRunner().invoke(main, ["export-prior", str(prior_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"prior [1, 512, 8, 512] for ae.ts at 48000 Hz; play it: ravelive serve --model ae.ts --prior {out}" \
        in result.output
    refused = CliRunner().invoke(main, ["export-prior", str(tmp_path), "--out", str(out)])
    assert refused.exit_code == 1 and "no checkpoint.pt" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
