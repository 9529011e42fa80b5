"""`ravelive export RUN --prior PRIOR`: the trained prior as the model's own `prior`, checked, and served."""

from dataclasses import replace

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from headless_serve import headless_config, play_collecting_latents
from training_fixtures import SAMPLE_RATE, quick_run

from ravelive.cli import main
from ravelive.control.model_params import PRIOR_PLAY, PRIOR_TEMPERATURE
from ravelive.errors import ConfigError
from ravelive.generation.latents import encode_corpus
from ravelive.generation.prior_export import export_prior
from ravelive.generation.prior_stream import TrainedPrior
from ravelive.generation.prior_training import train_prior
from ravelive.models.nn_model import NNModel
from ravelive.server import Server
from ravelive.training.export import export_checkpoint

LENGTH = 64  # latent frames per corpus sequence: 46 ms at ratio 32
PRIOR_STEPS = 20
FRAMES = 24  # frames compared at temperature 0


@pytest.fixture(scope="module")
def run(sines, tmp_path_factory):
    return quick_run(sines, tmp_path_factory.mktemp("export-prior"))


@pytest.fixture(scope="module")
def model_file(run, tmp_path_factory):
    return export_checkpoint(run, tmp_path_factory.mktemp("model") / "model.ts").path


@pytest.fixture(scope="module")
def prior_run(model_file, sines, tmp_path_factory):
    latents = tmp_path_factory.mktemp("latents")
    encode_corpus(model_file, [sines], latents, LENGTH)
    prior = tmp_path_factory.mktemp("prior") / "prior"
    train_prior(model_file, latents, prior, ["tiny"], [f"steps={PRIOR_STEPS}", "device=cpu"])
    return prior


@pytest.fixture(scope="module")
def embedded(run, prior_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded") / "with-prior.ts"
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(out), "--prior", str(prior_run)])
    assert result.exit_code == 0, result.output
    assert f"prior    trained: {prior_run} (step {PRIOR_STEPS}); play it: ravelive serve --model {out}" in result.output
    return out


def frame_by_frame(model: NNModel, temperature: float, batch: int = 2) -> torch.Tensor:
    model.module.reset()
    with torch.inference_mode():
        return torch.cat([model("prior", torch.full((batch, 1, 1), temperature)) for _ in range(FRAMES)], -1)


def test_the_models_prior_is_the_trained_one_frame_for_frame(embedded, prior_run, model_file):
    model = NNModel.load(embedded)
    trained = TrainedPrior.load(prior_run)
    assert model.metadata["prior"] == {"model": model.metadata["prior"]["model"], "run": str(prior_run),
                                       "step": PRIOR_STEPS}
    assert model.metadata["prior"]["model"]["latent_digest"] == model.metadata["latent"]["digest"]
    assert model.methods["prior"].params == (1, 32, model.methods["encode"].out_channels, 32)
    with torch.inference_mode():
        expected = trained.stream()(torch.zeros(2, 1, FRAMES))
    torch.testing.assert_close(frame_by_frame(model, 0.0), expected)  # the run's own mean path, state carried over
    torch.testing.assert_close(frame_by_frame(model, 0.0), expected)  # the model's reset starts it again
    separate = NNModel.load(export_prior(prior_run, embedded.parent / "prior.ts").path)
    torch.testing.assert_close(frame_by_frame(model, 0.0), frame_by_frame(separate, 0.0))
    assert torch.isfinite(frame_by_frame(model, 1.0)).all()
    noise = NNModel.load(model_file)  # without --prior: N(0, 1) noise, zero at temperature 0, as before
    assert "prior" not in noise.metadata and torch.all(frame_by_frame(noise, 0.0) == 0)


def test_the_encoding_and_decoding_are_the_plain_exports(embedded, model_file):
    with_prior, plain = NNModel.load(embedded), NNModel.load(model_file)
    assert with_prior.metadata["latent"] == plain.metadata["latent"]
    x = 0.5 * torch.randn(1, 1, 32 * 40, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        with_prior.module.reset()
        plain.module.reset()
        torch.testing.assert_close(with_prior("forward", x), plain("forward", x))


def test_a_prior_of_another_latent_space_is_refused_in_one_line(run, prior_run, sines, tmp_path):
    with pytest.raises(ConfigError, match=r"this export \(step 3\) encodes 8 latents at ratio 32, 44100 Hz, latent "
                                          r"digest \w{12}, but .*prior learnt \d+ at ratio 32, 44100 Hz, digest \w{12} "
                                          r"\(from model.ts, step 3\): export the run and step model.ts came from"):
        export_checkpoint(run, tmp_path / "m.ts", fidelity=1.0, prior=prior_run)
    assert not (tmp_path / "m.ts").exists()
    fewer = tmp_path / "fewer"  # the same kept dims, perhaps, but other principal axes: another latent space
    fewer.mkdir()
    for source in sorted(sines.glob("*.wav"))[:3]:
        (fewer / source.name).write_bytes(source.read_bytes())
    with pytest.raises(ConfigError, match=r"this export \(step 3\) encodes \d+ latents .* digest \w{12}, but"):
        export_checkpoint(run, tmp_path / "m.ts", dataset=fewer, prior=prior_run)
    refused = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "m.ts"), "--fidelity", "1",
                                        "--prior", str(prior_run)])
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    trained = TrainedPrior.load(prior_run)
    undigested = replace(trained.corpus.model, latent_digest=None)  # encoded by RAVE's export, say
    unchecked = replace(trained, corpus=replace(trained.corpus, model=undigested))
    with pytest.raises(ConfigError, match=r"records no latent digest .* ravelive export-prior .* --out PRIOR.ts"):
        unchecked.check_latent_space(digest="0" * 64, sample_rate=SAMPLE_RATE, ratio=32, dims=8, step=3)


def test_serve_plays_the_models_own_prior_without_a_prior_file(embedded, model_file, prior_run, tmp_path):
    server = Server(headless_config(embedded, tmp_path, SAMPLE_RATE, output_file=tmp_path / "out.wav"))
    assert server.swapper.playing.engine.prior is server.swapper.playing.model
    server.controls.update({PRIOR_PLAY: True, PRIOR_TEMPERATURE: 0.0})
    decoded = play_collecting_latents(server, SAMPLE_RATE // 512)
    with torch.inference_mode():
        expected = TrainedPrior.load(prior_run).stream()(torch.zeros(1, 1, decoded.shape[1]))[0].numpy()
    np.testing.assert_allclose(decoded, expected, rtol=1e-5, atol=1e-6)  # from the first block: the mean path
    played = soundfile.read(tmp_path / "out.wav", dtype="float32")[0]
    assert np.all(np.isfinite(played))
    separate = export_prior(prior_run, tmp_path / "prior.ts").path
    preferred = Server(headless_config(embedded, tmp_path, SAMPLE_RATE, prior=separate))
    assert preferred.swapper.playing.engine.prior.path == separate  # a --prior file takes precedence
    noise_only = Server(headless_config(model_file, tmp_path, SAMPLE_RATE))
    assert PRIOR_PLAY not in noise_only.controls.specs and noise_only.swapper.playing.engine.prior is None
