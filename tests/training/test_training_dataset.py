"""ravelive.training.dataset: reading examples (stored or lazy), random crops, workers, the rate check."""

import json
import pickle

import numpy as np
import pytest
import torch
from training_fixtures import LENGTH, sine, write

from ravelive.errors import ConfigError
from ravelive.training.dataset import DATA_NAME, META_NAME, SCALE, AudioDataset, check_dataset_rate, read_meta
from ravelive.training.preprocess import PreprocessSettings, preprocess


@pytest.fixture
def stored(corpus, tmp_path):
    preprocess([corpus], tmp_path / "stored", PreprocessSettings(example_length=LENGTH))
    return tmp_path / "stored"


@pytest.fixture
def lazy(corpus, tmp_path):
    preprocess([corpus], tmp_path / "lazy", PreprocessSettings(example_length=LENGTH, lazy=True))
    return tmp_path / "lazy"


def test_lazy_reads_what_preprocessing_stores(stored, lazy):
    eager, late = AudioDataset(stored), AudioDataset(lazy)
    assert not (lazy / DATA_NAME).exists()
    assert len(eager) == len(late) == 9
    for index in range(len(eager)):
        assert torch.abs(eager[index] - late[index]).max() <= 0.5 / SCALE + 1e-6, index


def test_lazy_refuses_a_source_that_changed(corpus, lazy):
    write(corpus / "sine.wav", sine(LENGTH, 44100), 44100)
    with pytest.raises(ConfigError, match=r"sine\.wav changed or vanished since `ravelive preprocess` indexed it"):
        AudioDataset(lazy)


@pytest.mark.parametrize("mode", ["stored", "lazy"])
def test_random_crops_are_windows_of_their_own_source(request, mode):
    path = request.getfixturevalue(mode)
    whole = AudioDataset(path)
    crops = AudioDataset(path, random_crop=True, generator=torch.Generator().manual_seed(3))
    source = whole.meta.sources[-1]  # sine.wav, the last in sorted order: items 6..8
    assert source.path.endswith("sine.wav")
    audio = whole._frames(source, 0, source.frames).T  # the whole file, as stored
    starts = []
    for index in (6, 7, 8):
        crop = crops[index].numpy()
        starts += [s for s in range(source.frames - LENGTH + 1) if np.abs(audio[:, s : s + LENGTH] - crop).max() < 1e-6]
    assert len(starts) >= 3 and any(start % LENGTH for start in starts)  # windows of sine.wav, not the aligned ones
    seeded = [AudioDataset(path, random_crop=True, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(seeded[0][6], seeded[1][6])


def test_a_dataset_pickles_without_its_memory_map(stored):
    dataset = AudioDataset(stored)
    first = dataset[0]
    copy = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker gets
    assert copy._data is None and torch.equal(copy[0], first)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch.shape == (4, 1, LENGTH)


def test_indexes_past_the_end_raise_index_error(stored):
    dataset = AudioDataset(stored)
    assert torch.equal(dataset[-1], dataset[len(dataset) - 1])
    with pytest.raises(IndexError, match="example 9 of 9"):
        dataset[9]


def test_a_dataset_from_another_rate_is_refused_in_one_line(stored):
    check_dataset_rate(stored, 44100)
    with pytest.raises(ConfigError) as caught:
        check_dataset_rate(AudioDataset(stored), 48000)
    assert str(caught.value) == (f"dataset {stored} was made at 44100 Hz, the config wants 48000 Hz: "
                                 "rerun `ravelive preprocess ... --samplerate 48000`")


def test_a_folder_without_an_index_is_no_dataset(tmp_path):
    with pytest.raises(ConfigError, match=r"no dataset\.json, not a dataset; make one with `ravelive preprocess`"):
        AudioDataset(tmp_path)


def test_an_index_of_another_version_is_refused(stored):
    document = json.loads((stored / META_NAME).read_text())
    (stored / META_NAME).write_text(json.dumps({**document, "version": 99}))
    with pytest.raises(ConfigError, match=r"not a ravelive dataset \(version 99; this ravelive reads version 1\)"):
        read_meta(stored)


def test_a_truncated_data_file_is_refused(stored):
    with open(stored / DATA_NAME, "r+b") as data:
        data.truncate(100)
    with pytest.raises(ConfigError, match=r"audio\.int16 is shorter than its index says"):
        AudioDataset(stored)
