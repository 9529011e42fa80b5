"""`ravelive generate-latents`: reproducible, finite, audible, seamless across windows, slerp series, refusals."""

import math
import sys

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from latent_fixtures import LENGTH, RATE, RATIO

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_training import DIFFUSION
from ravelive.generation.generate import (
    GenerationSettings,
    crossfade_ramp,
    generate_latents,
    generate_sequence,
    overlap_of,
    seed_noises,
    slerp,
    window_count,
)
from ravelive.models.autoencoder import AutoencoderConfig, StreamingAutoencoder, export_autoencoder
from ravelive.models.nn_model import NNModel
from ravelive.training.checkpoint import load_checkpoint

STEPS = 12


def trained_denoiser(run) -> Denoiser:
    checkpoint = load_checkpoint(run, DIFFUSION)
    denoiser = Denoiser(8, checkpoint["config"])
    denoiser.load_state_dict(checkpoint["model"])
    return denoiser.eval()


def test_the_same_seed_gives_the_same_audio_another_seed_other_audio(diffusion_run, model_file, tmp_path):
    settings = GenerationSettings(seconds=0.5, seed=7, steps=STEPS)
    first, = generate_latents(diffusion_run, model_file, tmp_path / "a", settings)
    again, = generate_latents(diffusion_run, model_file, tmp_path / "b", settings)
    other, = generate_latents(diffusion_run, model_file, tmp_path / "c", GenerationSettings(0.5, seed=8, steps=STEPS))
    audio, rate = soundfile.read(first, dtype="float32")
    assert first.name == "seed_7.wav" and rate == RATE and len(audio) == RATE // 2
    assert np.isfinite(audio).all() and np.sqrt(np.mean(audio**2)) > 1e-3  # finite and not silent
    np.testing.assert_array_equal(audio, soundfile.read(again, dtype="float32")[0])
    # the untrained test decoder is nearly deaf to its latents: other audio, slightly; other latents, wholly
    assert np.abs(audio - soundfile.read(other, dtype="float32")[0]).max() > 1e-5
    denoiser, settings = trained_denoiser(diffusion_run), GenerationSettings(steps=STEPS)
    z7, z7_again, z8 = (generate_sequence(denoiser, seed_noises(seed, 1, 8, LENGTH), LENGTH, settings)
                        for seed in (7, 7, 8))
    assert torch.equal(z7, z7_again) and (z7 - z8).norm() > 0.5 * z7.norm()


@pytest.mark.parametrize("sampler", ["dpm", "ddim"])
def test_windows_join_without_a_seam(diffusion_run, sampler):
    denoiser = trained_denoiser(diffusion_run)
    frames = 3 * LENGTH
    count = window_count(frames, LENGTH)
    hop, overlap = LENGTH - overlap_of(LENGTH), overlap_of(LENGTH)
    assert count == 4 and (count - 1) * hop + LENGTH >= frames
    settings = GenerationSettings(steps=STEPS, sampler=sampler)
    z = generate_sequence(denoiser, seed_noises(3, count, 8, LENGTH), frames, settings)
    assert z.shape == (8, frames) and torch.isfinite(z).all()
    steps = (z[:, 1:] - z[:, :-1]).norm(dim=0)  # steps[i]: from frame i to i + 1
    # the frames where a crossfade starts and ends: the joins between one window's frames and the next's
    edges = sorted({start + offset - 1 for start in range(hop, frames, hop) for offset in (0, overlap)}
                   & set(range(len(steps))))
    inside = [i for i in range(len(steps)) if all(abs(i - edge) > 1 for edge in edges)]
    assert max(steps[edges]) <= max(steps[inside])  # no step at an edge larger than the steps within windows
    # the check sees seams: two windows sampled independently and put end to end jump at the join
    independent = [generate_sequence(denoiser, [noise], LENGTH, settings) for noise in seed_noises(3, 2, 8, LENGTH)]
    assert (independent[1][:, 0] - independent[0][:, -1]).norm() > max(steps[inside])
    # and inpainting pulled window 2's head towards window 1's tail before the crossfade
    tail, head = independent[0][:, -overlap:], independent[1][:, :overlap]
    assert (z[:, hop : hop + overlap] - tail).norm() < (head - tail).norm()


def test_the_crossfade_weights_rise_smoothly_from_0_to_1():
    ramp = crossfade_ramp(8)
    assert 0 < ramp[0] < 0.05 and 0.95 < ramp[-1] < 1 and torch.all(ramp[1:] > ramp[:-1])
    torch.testing.assert_close(ramp + ramp.flip(0), torch.ones(8))  # symmetric: the sum of both weights is 1


def test_slerp_keeps_the_norm_and_the_series_ends_at_both_seeds(diffusion_run, model_file, tmp_path):
    a, b = seed_noises(1, 1, 8, LENGTH)[0].initial, seed_noises(2, 1, 8, LENGTH)[0].initial
    middle = slerp(a, b, 0.5)
    assert abs(middle.norm() / a.norm() - 1) < 0.05 and abs(((a + b) / 2).norm() / a.norm() - 1) > 0.2
    settings = GenerationSettings(seconds=0.3, steps=STEPS)
    series = generate_latents(diffusion_run, model_file, tmp_path / "s", settings, (1, 2), 3)
    assert [path.name for path in series] == ["slerp_1_2_0.wav", "slerp_1_2_1.wav", "slerp_1_2_2.wav"]
    ends = [generate_latents(diffusion_run, model_file, tmp_path / f"e{seed}", GenerationSettings(0.3, seed, STEPS))[0]
            for seed in (1, 2)]
    audio = [soundfile.read(path, dtype="float32")[0] for path in (*series, *ends)]
    np.testing.assert_allclose(audio[0], audio[3], atol=1e-4)
    np.testing.assert_allclose(audio[2], audio[4], atol=1e-4)
    assert np.abs(audio[1] - audio[0]).max() > 1e-5 and np.abs(audio[1] - audio[2]).max() > 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_the_piece_is_the_offline_decode_of_its_latents_from_its_first_sample(diffusion_run, tmp_path, causal):
    config = AutoencoderConfig(causal=causal)  # the corpus model's shape (8 latents, ratio 512, 48 kHz)
    torch.manual_seed(5)
    offline = StreamingAutoencoder(config, streaming=False).eval()
    path = export_autoencoder(config, tmp_path / "model.ts", state_dict=offline.state_dict())
    delay = NNModel.load(path).delay("decode")
    assert (delay > 0) == (not causal)
    wav, = generate_latents(diffusion_run, path, tmp_path / "out", GenerationSettings(seconds=0.5, steps=4))
    audio = soundfile.read(wav, dtype="float32")[0]
    with torch.inference_mode():
        expected = offline.decode(torch.from_numpy(np.load(wav.with_suffix(".npy")))[None])[0, 0].numpy()
    assert len(audio) == RATE // 2  # exactly the length asked for
    # all but the last `delay` samples, which hear the repeated last frame where the offline decode hears zeros
    settled = min(len(audio), len(expected) - delay)
    tolerance = 1e-4 * np.abs(expected).max()
    np.testing.assert_allclose(audio[:settled], expected[:settled], atol=tolerance)
    if delay:  # the comparison sees a shift of the delay: the stream as it comes out would fail it
        assert np.abs(expected[: settled - delay] - expected[delay:settled]).max() > 100 * tolerance


def test_bad_input_is_one_line_each(diffusion_run, model_file, tmp_path):
    other = export_autoencoder(AutoencoderConfig(latent_dims=4), tmp_path / "other.ts", seed=1)
    with pytest.raises(ConfigError, match=r"other.ts decodes 4 latents at ratio 512, 48000 Hz, but .* holds 8 at "
                                          r"ratio 512, 48000 Hz \(from ae.ts\): use that model"):
        generate_latents(diffusion_run, other, tmp_path / "x", GenerationSettings())
    slower = export_autoencoder(AutoencoderConfig(sample_rate=44100), tmp_path / "slower.ts", seed=1)
    with pytest.raises(ConfigError, match=r"slower.ts decodes 8 latents at ratio 512, 44100 Hz, but .* holds 8 at "
                                          r"ratio 512, 48000 Hz \(from ae.ts\): use that model"):
        generate_latents(diffusion_run, slower, tmp_path / "x", GenerationSettings())
    with pytest.raises(ConfigError, match=r"no checkpoint.pt in it .* train first: ravelive train-diffusion"):
        generate_latents(tmp_path, model_file, tmp_path / "x", GenerationSettings())
    with pytest.raises(ConfigError, match=r"--steps 0: expected at least 1"):
        GenerationSettings(steps=0)
    result = CliRunner().invoke(main, ["generate-latents", str(diffusion_run), "--model", str(other),
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "decodes 4 latents" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["generate-latents", str(tmp_path / "empty"), "--model", str(model_file),
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no checkpoint.pt in it" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_command_writes_a_longer_piece_than_the_training_context(diffusion_run, model_file, tmp_path):
    seconds = 2.5 * LENGTH * RATIO / RATE
    result = CliRunner().invoke(main, ["generate-latents", str(diffusion_run), "--model", str(model_file),
                                       "--out", str(tmp_path / "out"), "--seconds", str(seconds), "--seed", "4",
                                       "--steps", "8", "--sampler", "ddim", "--temperature", "0.8"])
    assert result.exit_code == 0, result.output
    assert f"wrote 1 file(s) to {tmp_path / 'out'}: seed_4.wav" in result.output
    audio, _ = soundfile.read(tmp_path / "out" / "seed_4.wav", dtype="float32")
    assert len(audio) == round(seconds * RATE) and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    latents = np.load(tmp_path / "out" / "seed_4.npy")  # beside it, for serve --latents-dir
    assert latents.dtype == np.float32 and latents.shape == (8, math.ceil(seconds * RATE / RATIO))


def test_without_the_generation_extra_sampling_says_what_to_install(monkeypatch):
    from ravelive.generation import sampling

    monkeypatch.setitem(sys.modules, "diffusers.schedulers", None)  # import fails as if absent
    with pytest.raises(ConfigError, match=r"needs diffusers.*pip install 'ravelive\[generation\]'"):
        sampling._scheduler("dpm")
