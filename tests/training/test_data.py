"""The data seam: open_dataset on a preprocessed dataset or a .wav folder, and the sampler's shares of each epoch."""

import numpy as np
import pytest
import soundfile
import torch

from ravelive.errors import ConfigError
from ravelive.training.data import EpochBatches, open_dataset


def test_crops_are_mono_float32_examples_at_the_model_rate(tmp_path):
    stereo = np.random.default_rng(1).uniform(-0.5, 0.5, (22050, 2)).astype(np.float32)
    soundfile.write(tmp_path / "half_rate.wav", stereo, 22050)  # one second: two at 44.1 kHz after resampling
    dataset = open_dataset(tmp_path, 8192, 44100)
    assert len(dataset) == 44100 // 8192
    example = dataset[0]
    assert example.shape == (1, 8192) and example.dtype == torch.float32
    torch.manual_seed(0)
    first = dataset[0]
    torch.manual_seed(0)
    assert torch.equal(first, dataset[0])  # the crop comes from torch's RNG: a resume restores it


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no .wav files found"):
        open_dataset(tmp_path, 8192, 44100)


def test_files_shorter_than_an_example_are_refused(tmp_path):
    soundfile.write(tmp_path / "short.wav", np.zeros(1000, np.float32), 44100)
    with pytest.raises(ConfigError, match=r"shorter than one example \(8192 samples at 44100 Hz\)"):
        open_dataset(tmp_path, 8192, 44100)


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_share_each_epoch_out_and_resume_anywhere(world_size):
    samplers = [EpochBatches(10, 3, seed=1, rank=rank, world_size=world_size) for rank in range(world_size)]
    per_epoch = samplers[0].batches_per_epoch
    first_epoch = [index for sampler in samplers for step in range(per_epoch) for index in sampler.batch(step)]
    assert len(first_epoch) == len(set(first_epoch)) == world_size * per_epoch * 3  # no example twice
    late = EpochBatches(10, 3, seed=1, rank=0, world_size=world_size, start=5)
    assert next(iter(late)) == samplers[0].batch(5)
    assert samplers[0].batch(0) != samplers[0].batch(per_epoch)  # a new order each epoch


def test_too_small_a_dataset_is_refused():
    with pytest.raises(ConfigError, match="fewer than one batch of 8 per process"):
        EpochBatches(5, 8, seed=0)


def preprocessed(tmp_path, example_length=8192, rate=44100, channels=1):
    from ravelive.training.preprocess import PreprocessSettings, preprocess

    audio = np.random.default_rng(2).uniform(-0.5, 0.5, 3 * example_length).astype(np.float32)
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "noise.wav", audio, rate)
    preprocess([tmp_path / "in"], tmp_path / "dataset",
               PreprocessSettings(sample_rate=rate, channels=channels, example_length=example_length))
    return tmp_path / "dataset", audio


def test_a_preprocessed_dataset_gives_crops_of_its_audio(tmp_path):
    path, audio = preprocessed(tmp_path)
    dataset = open_dataset(path, 8192, 44100)
    assert len(dataset) == 3
    example = dataset[1].numpy()[0]
    assert example.shape == (8192,)
    starts = [i for i in range(len(audio) - 8191) if abs(audio[i] - example[0]) < 1e-4]  # int16 storage
    assert any(np.allclose(audio[i : i + 8192], example, atol=1e-4) for i in starts)


@pytest.mark.parametrize(("length", "rate", "message"), [
    (4096, 44100, "holds examples of 8192 samples, the config wants 4096: --set example_length=8192"),
    (8192, 48000, "made at 44100 Hz, the config wants 48000 Hz"),
])
def test_a_preprocessed_dataset_that_disagrees_with_the_config_is_refused_in_one_line(tmp_path, length, rate, message):
    path, _ = preprocessed(tmp_path)
    with pytest.raises(ConfigError, match=message):
        open_dataset(path, length, rate)
