"""`ravelive preprocess` end to end through click's CliRunner."""

import pytest
from click.testing import CliRunner
from training_fixtures import LENGTH, sine, write

from ravelive.cli import main
from ravelive.training.dataset import AudioDataset


def preprocess(*args):
    return CliRunner().invoke(main, ["preprocess", *map(str, args)])


def test_a_corpus_becomes_a_dataset_and_a_rerun_adds_only_the_new_file(corpus, tmp_path):
    out = tmp_path / "ds"
    result = preprocess(corpus, "--out", out, "--example-length", LENGTH)
    assert result.exit_code == 0, result.output
    assert f"{out}: 9 examples of {LENGTH} samples at 44100 Hz (3 file(s) added, 0 already done, 2 skipped)" \
        in result.stdout
    assert "corrupt.wav: cannot read audio" in result.stderr
    assert f"short.wav: {LENGTH // 2} samples at 44100 Hz" in result.stderr
    assert len(AudioDataset(out)) == 9
    write(corpus / "later.wav", sine(LENGTH, 44100), 44100)
    again = preprocess(corpus, "--out", out, "--example-length", LENGTH)
    assert "10 examples" in again.stdout and "(1 file(s) added, 3 already done, 2 skipped)" in again.stdout


@pytest.mark.parametrize("lazy", [False, True])
def test_options_reach_the_dataset(corpus, tmp_path, lazy):
    out = tmp_path / "ds"
    args = [corpus / "deep", "--out", out, "--samplerate", 22050, "--channels", 2, "--example-length", 1024]
    result = preprocess(*args, *(["--lazy"] if lazy else []))
    assert result.exit_code == 0, result.output
    dataset = AudioDataset(out)
    assert (dataset.sample_rate, dataset.channels, dataset.example_length, dataset.meta.lazy) == (22050, 2, 1024, lazy)
    assert len(dataset) == 2 * LENGTH // 2 // 1024 and dataset[0].shape == (2, 1024)


def test_an_empty_folder_is_one_line_and_status_1(tmp_path):
    (tmp_path / "empty").mkdir()
    result = preprocess(tmp_path / "empty", "--out", tmp_path / "ds")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no audio files in") and result.stderr.count("\n") == 1


def test_only_short_files_say_to_lower_the_example_length(corpus, tmp_path):
    result = preprocess(corpus / "short.wav", "--out", tmp_path / "ds")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: the only file is shorter than one example of 131072 samples: lower --example-length\n")


def test_corrupt_audio_is_one_line_and_status_1(corpus, tmp_path):
    result = preprocess(corpus / "corrupt.wav", "--out", tmp_path / "ds")
    assert result.exit_code == 1
    assert "Error: the only file could not be read (" in result.stderr
    assert "corrupt.wav: cannot read audio" in result.stderr


def test_adding_at_another_rate_is_one_line(corpus, tmp_path):
    preprocess(corpus / "sine.wav", "--out", tmp_path / "ds", "--example-length", LENGTH)
    result = preprocess(corpus / "sine.wav", "--out", tmp_path / "ds", "--example-length", LENGTH,
                        "--samplerate", 48000)
    assert result.exit_code == 1
    assert result.stderr.endswith("was made with --samplerate 44100, not 48000: give --samplerate 44100 to add to "
                                  "it, or another --out\n")
