"""`ravelive latents`: a corpus encoded into normalised fixed-length latent sequences, resumable."""

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from latent_fixtures import LENGTH, RATE, RATIO, tone

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.generation.latents import ENCODED_DIR, LatentCorpus, encode_corpus
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from ravelive.models.nn_model import NNModel


@pytest.fixture
def corpus_dir(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    soundfile.write(folder / "a.wav", tone(1.0, 220.0), RATE)
    soundfile.write(folder / "b.wav", tone(0.6, 440.0), RATE)
    soundfile.write(folder / "c.flac", tone(0.5, 330.0, 44100, channels=2), 44100)  # resampled and mixed down
    return folder


def offline_encode(model_file, audio: np.ndarray) -> np.ndarray:
    model = NNModel.load(model_file)
    whole = audio[: len(audio) // RATIO * RATIO]  # whole latent frames
    with torch.inference_mode():
        return model("encode", torch.from_numpy(whole.T[None].copy())).numpy()[0]


def test_sequences_are_the_files_own_frames_cut_and_normalised_with_the_corpus_statistics(model_file, corpus_dir,
                                                                                            tmp_path):
    corpus = encode_corpus(model_file, [corpus_dir], tmp_path / "latents", LENGTH)
    assert (corpus.model.dims, corpus.model.ratio, corpus.model.sample_rate) == (8, RATIO, RATE)
    frames = {file.path.rsplit("/", 1)[1]: file.frames for file in corpus.files}
    assert frames == {"a.wav": RATE // RATIO, "b.wav": int(0.6 * RATE) // RATIO, "c.flac": int(0.5 * RATE) // RATIO}
    assert corpus.count == sum(count // LENGTH for count in frames.values())
    sequences = corpus.sequences()
    assert sequences.shape == (corpus.count, 8, LENGTH)
    # the stored frames are the model's own encode of the whole file (this causal model streams exactly)
    a = np.load(tmp_path / "latents" / ENCODED_DIR / f"{corpus.files[0].key}.npy")
    np.testing.assert_allclose(a, offline_encode(model_file, tone(1.0, 220.0))[:, : a.shape[1]], atol=1e-5)
    everything = np.concatenate([np.load(tmp_path / "latents" / ENCODED_DIR / f"{file.key}.npy")
                                 for file in corpus.files], axis=1)
    np.testing.assert_allclose(corpus.mean, everything.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(corpus.std, everything.std(axis=1), rtol=1e-4)
    np.testing.assert_allclose(corpus.denormalise(sequences[1]), a[:, LENGTH : 2 * LENGTH], atol=1e-5)
    reopened = LatentCorpus.open(tmp_path / "latents")
    assert reopened == corpus


def test_a_rerun_encodes_only_new_files_and_another_length_only_recuts(model_file, corpus_dir, tmp_path):
    out = tmp_path / "latents"
    first = encode_corpus(model_file, [corpus_dir], out, LENGTH)
    stamps = {path.name: path.stat().st_mtime_ns for path in (out / ENCODED_DIR).iterdir()}
    soundfile.write(corpus_dir / "d.wav", tone(0.4, 550.0), RATE)
    progress = []
    second = encode_corpus(model_file, [corpus_dir], out, LENGTH // 2, on_progress=progress.append)
    assert {path.name: path.stat().st_mtime_ns for path in (out / ENCODED_DIR).iterdir() if path.name in stamps} \
        == stamps  # the three done files were not encoded again
    assert len(second.files) == 4 and second.files[:3] == first.files
    assert second.count == sum(file.frames // (LENGTH // 2) for file in second.files)
    assert sum(progress) == sum(soundfile.info(path).frames for path in corpus_dir.iterdir())


def test_refusals_are_one_line_each(model_file, corpus_dir, tmp_path):
    out = tmp_path / "latents"
    with pytest.raises(ConfigError, match=r"no sequence of 4096 latent frames \(43.7 s\).*lower --length"):
        encode_corpus(model_file, [corpus_dir], out, 4096)
    encode_corpus(model_file, [corpus_dir], out, LENGTH)
    other = export_autoencoder(AutoencoderConfig(latent_dims=4), tmp_path / "other.ts", seed=1)
    with pytest.raises(ConfigError, match="holds latents of ae.ts .* give another --out"):
        encode_corpus(other, [corpus_dir], out, LENGTH)
    with pytest.raises(ConfigError, match="other.ts decodes 4 latents .* holds 8 at ratio 512, 48000 Hz"):
        LatentCorpus.open(out).check_model(NNModel.load(other))
    LatentCorpus.open(out).check_model(NNModel.load(model_file))
    with pytest.raises(ConfigError, match="not a latent corpus"):
        LatentCorpus.open(tmp_path)


def test_the_command_reports_skipped_files_and_what_it_wrote(model_file, corpus_dir, tmp_path):
    (corpus_dir / "broken.wav").write_bytes(b"RIFF but not really")
    result = CliRunner().invoke(main, ["latents", str(model_file), str(corpus_dir), "--out", str(tmp_path / "z"),
                                       "--length", str(LENGTH)])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "broken.wav" in result.output
    count = LatentCorpus.open(tmp_path / "z").count
    seconds = LENGTH * RATIO / RATE
    assert f"wrote {count} sequence(s) of {LENGTH} frames ({seconds:.1f} s) x 8 latents from 3 file(s)" \
        in result.output
