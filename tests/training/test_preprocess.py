"""ravelive.training.preprocess: the walk, decoding, skipping, reruns, and the errors of an empty result."""

import numpy as np
import pytest
import soundfile
import soxr
import torch
from training_fixtures import LENGTH, sine, write

from ravelive.errors import AudioFileError, ConfigError
from ravelive.training.dataset import DATA_NAME, SCALE, AudioDataset
from ravelive.training.preprocess import PreprocessSettings, plan, preprocess, run

SETTINGS = PreprocessSettings(example_length=LENGTH)
STEP = 0.5 / SCALE + 1e-7  # int16 rounding, plus float rounding of the decoded audio


def frames_of(dataset: AudioDataset, name: str) -> np.ndarray:
    """The stored frames [channels, n] of source `name` (whole examples, joined)."""
    start = 0
    for source in dataset.meta.sources:
        count = dataset.meta.examples(source)
        if source.path.endswith(name):
            return np.concatenate([dataset[i].numpy() for i in range(start, start + count)], axis=1)
        start += count
    raise KeyError(name)


def test_the_corpus_gives_its_examples_and_lists_what_it_skipped(corpus, tmp_path):
    report = preprocess([corpus], tmp_path / "ds", SETTINGS)
    dataset = AudioDataset(tmp_path / "ds")
    assert report.examples == len(dataset) == 9  # see the corpus fixture
    assert dataset[0].shape == (1, LENGTH) and dataset[0].dtype == torch.float32
    reasons = {skip.path.name: skip for skip in report.skipped}
    assert set(reasons) == {"corrupt.wav", "short.wav"}
    assert "cannot read audio" in reasons["corrupt.wav"].reason and not reasons["corrupt.wav"].too_short
    assert reasons["short.wav"].reason == (
        f"{LENGTH // 2} samples at 44100 Hz (0.05 s), shorter than one example of {LENGTH} samples"
    )
    assert {path.name for path in report.added} == {"sine.wav", "stereo.flac", "rate48k.wav"}


def test_audio_round_trips_within_int16_rounding(corpus, tmp_path):
    preprocess([corpus / "sine.wav"], tmp_path / "ds", SETTINGS)
    stored = frames_of(AudioDataset(tmp_path / "ds"), "sine.wav")
    source = soundfile.read(corpus / "sine.wav", dtype="float32")[0]
    assert stored.shape == (1, 3 * LENGTH)
    assert np.abs(stored[0] - source[: 3 * LENGTH]).max() <= STEP


@pytest.mark.parametrize("channels", [1, 2])
def test_stereo_is_mixed_down_or_kept(corpus, tmp_path, channels):
    preprocess([corpus / "deep"], tmp_path / "ds", PreprocessSettings(channels=channels, example_length=LENGTH))
    stored = frames_of(AudioDataset(tmp_path / "ds"), "stereo.flac")
    source = soundfile.read(corpus / "deep" / "er" / "stereo.flac", dtype="float32")[0].T
    expected = source.mean(axis=0, keepdims=True) if channels == 1 else source
    assert stored.shape == (channels, 2 * LENGTH)
    assert np.abs(stored - expected).max() <= STEP


def test_mono_is_spread_to_every_channel(corpus, tmp_path):
    preprocess([corpus / "sine.wav"], tmp_path / "ds", PreprocessSettings(channels=2, example_length=LENGTH))
    stored = frames_of(AudioDataset(tmp_path / "ds"), "sine.wav")
    np.testing.assert_array_equal(stored[0], stored[1])


def test_a_48k_file_is_resampled_to_44k1(corpus, tmp_path):
    preprocess([corpus / "rate48k.wav"], tmp_path / "ds", SETTINGS)
    dataset = AudioDataset(tmp_path / "ds")
    assert dataset.meta.sources[0].frames == 5 * LENGTH * 44100 // 48000
    stored = frames_of(dataset, "rate48k.wav")
    expected = soxr.resample(soundfile.read(corpus / "rate48k.wav", dtype="float32")[0], 48000, 44100, "HQ")
    assert np.abs(stored[0] - expected[: stored.shape[1]]).max() <= STEP
    spectrum = np.abs(np.fft.rfft(stored[0]))
    assert np.argmax(spectrum) * 44100 / stored.shape[1] == pytest.approx(1000, abs=44100 / stored.shape[1])


def test_a_rerun_skips_done_files_and_picks_up_a_new_one(corpus, tmp_path):
    out = tmp_path / "ds"
    first = preprocess([corpus], out, SETTINGS)
    before = (out / DATA_NAME).read_bytes()
    again = plan([corpus], out, SETTINGS)
    assert not again.todo and len(again.done) == 3 and again.total_frames == 0
    write(corpus / "new" / "more.wav", sine(2 * LENGTH, 44100, freq=220.0), 44100)
    report = preprocess([corpus], out, SETTINGS)
    assert [path.name for path in report.added] == ["more.wav"] and len(report.done) == 3
    assert report.examples == first.examples + 2 == len(AudioDataset(out))
    assert (out / DATA_NAME).read_bytes()[: len(before)] == before  # appended, the old frames untouched


def test_a_changed_file_is_stored_anew(corpus, tmp_path):
    out = tmp_path / "ds"
    preprocess([corpus / "sine.wav"], out, SETTINGS)
    write(corpus / "sine.wav", sine(LENGTH, 44100, amplitude=0.25), 44100)
    report = preprocess([corpus / "sine.wav"], out, SETTINGS)
    dataset = AudioDataset(out)
    assert len(report.added) == 1 and len(dataset) == 1
    assert float(dataset[0].abs().max()) == pytest.approx(0.25, abs=1e-3)


def test_an_interrupted_write_is_cut_off_by_the_next_run(corpus, tmp_path):
    out = tmp_path / "ds"
    preprocess([corpus / "sine.wav"], out, SETTINGS)
    with open(out / DATA_NAME, "ab") as data:
        data.write(b"\x7f" * 1234)  # frames a killed run wrote but never committed to the index
    write(corpus / "later.wav", sine(LENGTH, 44100, freq=330.0), 44100)
    preprocess([corpus / "sine.wav", corpus / "later.wav"], out, SETTINGS)
    dataset = AudioDataset(out)
    later = frames_of(dataset, "later.wav")
    assert np.abs(later[0] - sine(LENGTH, 44100, freq=330.0)).max() <= STEP
    assert (out / DATA_NAME).stat().st_size == dataset.meta.frames * 2


def test_a_rerun_with_another_rate_is_refused(corpus, tmp_path):
    preprocess([corpus / "sine.wav"], tmp_path / "ds", SETTINGS)
    with pytest.raises(ConfigError, match=r"was made with --samplerate 44100, not 48000: give --samplerate 44100"):
        plan([corpus / "sine.wav"], tmp_path / "ds", PreprocessSettings(sample_rate=48000, example_length=LENGTH))


def test_an_empty_folder_is_one_line(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(AudioFileError, match=r"^no audio files in .*empty \(looked for .*\.wav.*\); give files"):
        plan([tmp_path / "empty"], tmp_path / "ds")


def test_a_missing_input_is_one_line(tmp_path):
    with pytest.raises(AudioFileError, match=r"nowhere: no such file or folder"):
        plan([tmp_path / "nowhere"], tmp_path / "ds")


def test_only_short_files_say_to_lower_the_example_length(tmp_path):
    for index in range(12):
        write(tmp_path / "in" / f"{index}.wav", sine(1000, 44100), 44100)
    with pytest.raises(AudioFileError) as caught:
        plan([tmp_path / "in"], tmp_path / "ds")
    assert str(caught.value) == "all 12 files are shorter than one example of 131072 samples: lower --example-length"
    assert not (tmp_path / "ds").exists()


def test_only_corrupt_files_say_none_could_be_read(tmp_path):
    for index in range(2):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{index}.wav").write_bytes(np.random.default_rng(index).bytes(3000))
    with pytest.raises(AudioFileError, match=r"^none of the 2 files could be read \(.*0\.wav: cannot read audio"):
        plan([tmp_path / "in"], tmp_path / "ds")


def test_a_mix_of_failures_counts_each(corpus, tmp_path):
    with pytest.raises(AudioFileError, match=r"^no examples from 2 files: 1 unreadable, 1 shorter than one example"):
        plan([corpus / "corrupt.wav", corpus / "short.wav"], tmp_path / "ds", SETTINGS)


def test_nonpositive_settings_are_refused(corpus, tmp_path):
    with pytest.raises(ConfigError, match=r"--channels 0 must be a positive whole number"):
        plan([corpus], tmp_path / "ds", PreprocessSettings(channels=0))


def truncated_flac(path, frames: int):
    """A FLAC file whose header promises `frames` frames but whose data stops a quarter of the way in."""
    write(path, np.random.default_rng(0).uniform(-0.5, 0.5, frames).astype(np.float32), 44100, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 4])
    return path


def test_data_corrupt_midway_is_skipped_and_its_frames_cut_off(corpus, tmp_path):
    broken = truncated_flac(corpus / "broken.flac", 16 * LENGTH)
    found = []
    job = plan([corpus / "sine.wav", broken], tmp_path / "ds", SETTINGS)
    assert broken in [info.path for info in job.todo]  # the header alone looks fine
    report = run(job, on_skip=found.append)
    assert [skip.path for skip in found] == [broken] and "cannot read audio" in found[0].reason
    dataset = AudioDataset(tmp_path / "ds")
    assert len(dataset) == report.examples == 3
    sine_bytes = LENGTH * 7 // 2 * 2  # sine.wav alone, mono int16
    assert (tmp_path / "ds" / DATA_NAME).stat().st_size == dataset.meta.frames * 2 == sine_bytes


def test_only_a_file_corrupt_midway_leaves_no_dataset(tmp_path):
    broken = truncated_flac(tmp_path / "broken.flac", 16 * LENGTH)
    with pytest.raises(AudioFileError, match=r"^the only file could not be read \(.*broken\.flac: cannot read audio"):
        preprocess([broken], tmp_path / "ds", SETTINGS)
    assert not (tmp_path / "ds" / DATA_NAME).exists() and not (tmp_path / "ds" / "dataset.json").exists()


def test_a_moved_corpus_is_not_stored_twice(corpus, tmp_path):
    out = tmp_path / "ds"
    first = preprocess([corpus], out, SETTINGS)
    moved = corpus.rename(tmp_path / "moved")
    again = plan([moved], out, SETTINGS)
    assert not again.todo and len(again.done) == 3
    assert len(AudioDataset(out)) == first.examples


def test_a_lazy_rerun_drops_vanished_files_so_the_dataset_opens_again(corpus, tmp_path):
    out = tmp_path / "ds"
    lazy = PreprocessSettings(example_length=LENGTH, lazy=True)
    preprocess([corpus], out, lazy)
    (corpus / "sine.wav").unlink()
    with pytest.raises(ConfigError, match="sine.wav changed or vanished"):
        AudioDataset(out)
    report = preprocess([corpus], out, lazy)
    assert report.examples == 9 - 3 == len(AudioDataset(out))
