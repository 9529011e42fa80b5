"""What the training loop reads: `open_dataset` (the one seam to the dataset) and a resumable sampler.

`open_dataset(path, example_length, sample_rate)` is the only place the loop
learns where examples come from: a `ravelive preprocess` output (the
memory-mapped dataset of `ravelive/training/dataset.py`, random crops, its
rate, channels and example length checked against the config), or, for a
quick run on a few files, a folder of .wav files (recursively) read into
memory, mixed to mono and resampled with soxr (`WavCrops`). Either way the
loop gets a torch Dataset of float32 [1, example_length] tensors, and the
crops draw from torch's global RNG, which checkpoints save.

`EpochBatches` shards and orders examples: a permutation per epoch from
(seed, epoch), padded to a multiple of the world size and dealt out to the
ranks like torch's DistributedSampler, then cut into batches. Unlike
DistributedSampler it can start at any step, and its position is a pure
function of the step (epoch = step // batches_per_epoch), so a resumed run
reads exactly the batches the uninterrupted run would have.
"""

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ravelive.errors import AudioFileError, ConfigError


class WavCrops(torch.utils.data.Dataset):
    """A folder of .wav files as a dataset: random crops of in-memory mono audio, one example per `example_length` of audio.

    Example i draws from the file holding window i (so longer files give more examples) a crop
    starting anywhere in it, from torch's global RNG: with the loader in this process (workers = 0)
    the loop's saved RNG state makes the crops of a resumed run the same as an uninterrupted one's.
    """

    def __init__(self, signals: list[np.ndarray], example_length: int) -> None:
        self.signals = [torch.from_numpy(s) for s in signals]
        self.example_length = example_length
        counts = [len(s) // example_length for s in signals]
        self.file_of = np.repeat(np.arange(len(signals)), counts)

    def __len__(self) -> int:
        return len(self.file_of)

    def __getitem__(self, index: int) -> torch.Tensor:
        signal = self.signals[self.file_of[index]]
        start = int(torch.randint(0, len(signal) - self.example_length + 1, ()))
        return signal[start : start + self.example_length][None]


def open_dataset(path: str | Path, example_length: int, sample_rate: int) -> torch.utils.data.Dataset:
    """The training examples in `path`: float32 [1, example_length] at `sample_rate`; see the module."""
    import soundfile
    import soxr

    from ravelive.training.dataset import META_NAME, AudioDataset, check_dataset_rate

    path = Path(path)
    if (path / META_NAME).exists():
        dataset = AudioDataset(path, random_crop=True)  # crops from torch's global RNG: resume stays exact
        check_dataset_rate(dataset, sample_rate)
        if dataset.channels != 1:
            raise ConfigError(f"dataset {path} has {dataset.channels} channels, the models train on 1: rerun "
                              f"`ravelive preprocess ... --channels 1`")
        if dataset.example_length != example_length:
            raise ConfigError(f"dataset {path} holds examples of {dataset.example_length} samples, the config wants "
                              f"{example_length}: --set example_length={dataset.example_length}, or rerun "
                              f"`ravelive preprocess ... --example-length {example_length}`")
        return dataset
    files = sorted(path.rglob("*.wav")) if path.is_dir() else []
    if not files:
        raise ConfigError(f"{path}: no .wav files found; give a folder of .wav files as DATASET")
    signals = []
    for file in files:
        try:
            audio, rate = soundfile.read(file, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise AudioFileError(f"{file}: cannot read it ({' '.join(str(error).split())}); remove or fix it")
        mono = audio.mean(1)
        if rate != sample_rate:
            mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
        if len(mono) >= example_length:
            signals.append(np.ascontiguousarray(mono))
    if not signals:
        raise ConfigError(
            f"{path}: every .wav file is shorter than one example ({example_length} samples at {sample_rate} Hz); "
            "add longer files or --set example_length=..."
        )
    return WavCrops(signals, example_length)


class EpochBatches(torch.utils.data.Sampler):
    """Batches of indices for one rank, forever, from step `start`; the same batches for the same step."""

    def __init__(
        self, length: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> None:
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.rank, self.world_size, self.start = rank, world_size, start
        self.per_rank = math.ceil(length / world_size)
        self._epoch, self._mine = -1, []  # this rank's share of the current epoch, computed once per epoch
        self.batches_per_epoch = self.per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"the dataset has {length} examples, fewer than one batch of {batch_size} per process "
                f"({world_size} process(es)): add audio, or --set batch_size=... / example_length=... smaller"
            )

    def batch(self, step: int) -> list[int]:
        """Indices of this rank's batch at `step`."""
        epoch, index = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.length, generator=generator).tolist()
            order += order[: self.per_rank * self.world_size - self.length]  # pad as DistributedSampler does
            self._epoch, self._mine = epoch, order[self.rank :: self.world_size]
        return self._mine[index * self.batch_size : (index + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        return self.batches_per_epoch
