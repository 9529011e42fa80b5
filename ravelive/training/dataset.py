"""The training dataset on disk, and the torch Dataset that reads it.

A dataset is a folder of two files:

- `audio.int16`: every source's frames, one after another, interleaved
  little-endian int16 ([frames, channels] in C order), read through
  `np.memmap`: the operating system pages in only the examples a batch
  touches, and DataLoader workers share the page cache;
- `dataset.json`: format name and version, sample rate, channels, example
  length, lazy or not, the frame count the data file is committed to, and
  one entry per source file (absolute path, size and mtime so a rerun skips
  it, its own rate and frame count, where its frames start, how many).

Each source is stored whole, so the examples of a file are its consecutive
windows of `example_length` frames (the last partial one is dropped, as in
RAVE), and `random_crop` can instead take a window anywhere in the file.

Why a raw frame file and not lmdb (RAVE's choice): examples have a fixed
length at offsets computed from the index, so a key-value store adds
nothing but a dependency, a map size to guess and a serialisation step per
read; a flat file appends in place (a rerun adds files without rewriting)
and maps into memory with numpy alone. int16 over float16: a uniform 96 dB
of range with an error under 2^-16 of full scale everywhere (float16's
11-bit mantissa gives ~66 dB near full scale), and 16-bit sources are
stored exactly. Samples beyond [-1, 1] are clipped.

A lazy dataset (`lazy: true`) has no data file: each read decodes the
window it needs from the source (`decode.decode_window`), so a source that
changed or vanished since preprocessing is refused when the dataset opens.
"""

import bisect
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ravelive.errors import ConfigError
from ravelive.training.decode import SourceInfo, decode_window

FORMAT = "ravelive-dataset"
VERSION = 1
META_NAME = "dataset.json"
DATA_NAME = "audio.int16"
DTYPE = np.dtype("<i2")
SCALE = 32767.0  # int16 full scale; -32768 is never written, so the code is symmetric around zero


@dataclass(frozen=True)
class Source:
    """One decoded file as the index records it."""

    path: str  # absolute, as resolved when preprocessed
    size: int  # bytes; with mtime_ns, what a rerun compares to skip the file
    mtime_ns: int
    source_rate: int  # the file's own rate and frames (a lazy read needs them)
    source_channels: int
    source_frames: int
    offset: int  # first frame in the data file (0 for a lazy dataset)
    frames: int  # frames at the dataset's rate

    def same_file(self, path: Path) -> bool:
        """Whether `path` still has the size and mtime it had when it was preprocessed."""
        try:
            stat = path.stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


@dataclass(frozen=True)
class DatasetMeta:
    """The contents of `dataset.json`."""

    sample_rate: int  # Hz
    channels: int
    example_length: int  # frames per training example
    lazy: bool = False  # True: no data file, examples are decoded from the sources at read time
    frames: int = 0  # frames committed to the data file; anything after them is a write that never finished
    sources: tuple[Source, ...] = field(default_factory=tuple)

    def examples(self, source: Source) -> int:
        """Whole examples in `source`."""
        return source.frames // self.example_length

    def to_json(self) -> str:
        document = {"format": FORMAT, "version": VERSION, **asdict(self)}
        document["sources"] = [asdict(source) for source in self.sources]
        return json.dumps(document, indent=1)

    @classmethod
    def from_json(cls, text: str, where: Path) -> "DatasetMeta":
        try:
            document = json.loads(text)
            if document.get("format") != FORMAT:
                raise ValueError(f"format is {document.get('format')!r}, not {FORMAT!r}")
            if document.get("version") != VERSION:
                raise ValueError(f"version {document.get('version')}; this ravelive reads version {VERSION}")
            sources = tuple(Source(**entry) for entry in document["sources"])
            return cls(int(document["sample_rate"]), int(document["channels"]), int(document["example_length"]),
                       bool(document["lazy"]), int(document["frames"]), sources)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ConfigError(f"{where}: not a ravelive dataset ({error}); rerun `ravelive preprocess`") from None


def read_meta(dataset: Path) -> DatasetMeta:
    """The index of the dataset folder `dataset`; ConfigError when there is none or it is damaged."""
    path = Path(dataset) / META_NAME
    try:
        text = path.read_text()
    except OSError:
        raise ConfigError(f"{dataset}: no {META_NAME}, not a dataset; make one with `ravelive preprocess`") from None
    return DatasetMeta.from_json(text, path)


def write_meta(dataset: Path, meta: DatasetMeta) -> None:
    """Replace the index atomically: a crash leaves the old index or the new one, never half of one."""
    path = Path(dataset) / META_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(meta.to_json())
    os.replace(temporary, path)


def quantise(frames: np.ndarray) -> np.ndarray:
    """float frames -> int16 codes (clipped to [-1, 1], rounded to nearest: error <= 0.5 / 32767)."""
    return np.round(np.clip(frames, -1.0, 1.0) * SCALE).astype(DTYPE)


def check_dataset_rate(dataset: "AudioDataset | DatasetMeta | Path | str", sample_rate: int) -> None:
    """Refuse a dataset made at another rate than the model's config asks for (one line, with the fix)."""
    where = dataset.path if isinstance(dataset, AudioDataset) else dataset
    meta = dataset.meta if isinstance(dataset, AudioDataset) else (
        dataset if isinstance(dataset, DatasetMeta) else read_meta(Path(dataset)))
    if meta.sample_rate != sample_rate:
        raise ConfigError(
            f"dataset {where} was made at {meta.sample_rate} Hz, the config wants {sample_rate} Hz: "
            f"rerun `ravelive preprocess ... --samplerate {sample_rate}`"
        )


class AudioDataset(torch.utils.data.Dataset):
    """Training examples of a preprocessed dataset: float32 tensors [channels, example_length].

    Item i is the i-th whole example in source order. With `random_crop`,
    item i is instead a window at a random place in item i's source file,
    so every file still weighs by its length. Crops draw from `generator`,
    or from torch's global RNG, which DataLoader seeds per worker.

    Picklable for DataLoader workers: the memory map is opened per process
    on first read, never pickled (pickling a memmap copies the data).
    """

    def __init__(self, path: Path | str, random_crop: bool = False, generator: torch.Generator | None = None) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.random_crop = random_crop
        self.generator = generator
        self._sources = [s for s in self.meta.sources if self.meta.examples(s) > 0]
        counts = [self.meta.examples(s) for s in self._sources]
        self._ends = np.cumsum(counts).tolist()  # item i belongs to the first source whose end exceeds i
        self._data: np.ndarray | None = None
        if self.meta.lazy:
            for source in self._sources:
                if not source.same_file(Path(source.path)):
                    raise ConfigError(f"{source.path} changed or vanished since `ravelive preprocess` indexed it "
                                      f"into {self.path} (--lazy); rerun preprocess")
        elif (self.path / DATA_NAME).stat().st_size < self.meta.frames * self.meta.channels * DTYPE.itemsize:
            raise ConfigError(f"{self.path / DATA_NAME} is shorter than its index says; rerun `ravelive preprocess`")

    @property
    def sample_rate(self) -> int:
        return self.meta.sample_rate

    @property
    def channels(self) -> int:
        return self.meta.channels

    @property
    def example_length(self) -> int:
        return self.meta.example_length

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        index %= len(self)
        which = bisect.bisect_right(self._ends, index)
        source = self._sources[which]
        length = self.meta.example_length
        if self.random_crop:
            start = int(torch.randint(0, source.frames - length + 1, (1,), generator=self.generator))
        else:
            start = (index - (self._ends[which - 1] if which else 0)) * length
        return torch.from_numpy(np.ascontiguousarray(self._frames(source, start, length).T))

    def _frames(self, source: Source, start: int, length: int) -> np.ndarray:
        """float32 [length, channels] from `start` (a frame of `source`)."""
        meta = self.meta
        if meta.lazy:
            info = SourceInfo(Path(source.path), source.source_rate, source.source_channels, source.source_frames)
            return decode_window(info, meta.sample_rate, meta.channels, start, length)
        if self._data is None:
            self._data = np.memmap(self.path / DATA_NAME, dtype=DTYPE, mode="r", shape=(meta.frames, meta.channels))
        first = source.offset + start
        return self._data[first : first + length].astype(np.float32) / SCALE

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}


def with_sources(meta: DatasetMeta, sources: Sequence[Source], frames: int) -> DatasetMeta:
    """`meta` holding `sources` (replacing entries of the same path) and `frames` committed."""
    kept = {source.path: source for source in meta.sources}
    kept.update({source.path: source for source in sources})
    return replace(meta, sources=tuple(kept.values()), frames=frames)
