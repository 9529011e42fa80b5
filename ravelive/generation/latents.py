"""`ravelive latents`: a corpus encoded by a model into fixed-length, normalised latent sequences.

The training material of a latent diffusion model or a prior (RAVE-Latent-
Diffusion encodes its corpus the same way). A folder LATENTS holds:

- `encoded/<key>.npy`: one source file's latent frames, float32 [dims,
  frames], as the model's streaming `encode` gives them (its own delay
  included: a non-causal model's first frames hear the start of the file
  late). Written atomically, one file at a time, so an interrupted run
  resumes where it stopped: a rerun encodes only the files not done yet (a
  source is done when its path, size and mtime match).
- `sequences.npy`: float32 [count, dims, length], every file's frames cut
  into back-to-back windows of `length` frames (a file's tail shorter than
  one window is left out; windows never cross files), each dimension
  normalised with the corpus mean and standard deviation.
- `latents.json`: the model the frames came from (name, sha256, rate,
  ratio, latent size; for a `ravelive export`, its latent digest and
  training step, which `export --prior` checks), the statistics, the length, the files and where
  each sequence starts. A rerun with another `--length` rebuilds only the
  sequences; another model is refused (its latents would mean nothing).

`LatentCorpus.open(folder)` reads it back for training; `check_model`
(`ModelIdentity.check_decoder`, which a prior file uses too) refuses a model
of another latent size or rate in one line; `check_encoder` also warns when
the model is another file than the one that encoded the corpus.
"""

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

from ravelive.engine.stream import StreamEngine
from ravelive.errors import AudioFileError, ConfigError, one_line
from ravelive.generation import DEFAULT_LENGTH, MAX_LENGTH
from ravelive.models.nn_model import NNModel

FORMAT = "ravelive-latents"
VERSION = 1
META_NAME = "latents.json"
SEQUENCES_NAME = "sequences.npy"
ENCODED_DIR = "encoded"
CHUNK_FRAMES = 65536  # source frames encoded at a time: memory stays constant whatever the file's length
_READ_ERRORS = (soundfile.LibsndfileError, RuntimeError, OSError)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made the latents: a corpus is only meaningful to the model that encoded it."""

    name: str
    sha256: str
    sample_rate: int
    ratio: int  # audio samples per latent frame
    dims: int  # latent size
    latent_digest: str | None = None  # a `ravelive export`'s weights and latent rotation (its ravelive.json)
    step: int | None = None  # training steps of those weights (its ravelive.json), for messages

    def check_decoder(self, model: NNModel, holder: str, fix: str) -> None:
        """ConfigError unless `model`'s decode takes latents of this size, ratio and rate.

        `holder` says what holds latents of this model ("latents/ holds"), `fix` the other way out.
        """
        decode = model.methods.get("decode")
        found = (decode.in_channels if decode else None, decode.in_ratio if decode else None, model.sample_rate)
        if found != (self.dims, self.ratio, self.sample_rate):
            raise ConfigError(
                f"{model.path.name} decodes {found[0]} latents at ratio {found[1]}, {found[2]} Hz, but {holder} "
                f"{self.dims} at ratio {self.ratio}, {self.sample_rate} Hz (from {self.name}): use that model, {fix}"
            )


@dataclass(frozen=True)
class EncodedFile:
    """One source file's latent frames in `encoded/`."""

    path: str  # the source as given
    size: int
    mtime_ns: int
    key: str  # its file name in encoded/, without .npy
    frames: int


@dataclass(frozen=True)
class LatentCorpus:
    """A LATENTS folder as `latents.json` describes it."""

    folder: Path
    model: ModelIdentity
    files: tuple[EncodedFile, ...]
    length: int
    mean: tuple[float, ...]  # per dimension, over every frame of every file
    std: tuple[float, ...]
    starts: tuple[tuple[int, int], ...]  # (file index, first frame) of each sequence

    @classmethod
    def open(cls, folder: str | Path) -> "LatentCorpus":
        """The corpus in `folder`; ConfigError when there is none or it is damaged."""
        folder = Path(folder)
        path = folder / META_NAME
        try:
            document = json.loads(path.read_text())
        except OSError:
            raise ConfigError(f"{folder}: no {META_NAME}, not a latent corpus; "
                              f"make one with `ravelive latents`") from None
        except ValueError as error:
            raise ConfigError(f"{path}: not JSON ({error}); rerun `ravelive latents`") from None
        try:
            if document["format"] != FORMAT or document["version"] != VERSION:
                raise ValueError(f"format {document['format']!r} version {document['version']}, "
                                 f"this ravelive reads {FORMAT!r} version {VERSION}")
            return cls(folder, ModelIdentity(**document["model"]),
                       tuple(EncodedFile(**entry) for entry in document["files"]), int(document["length"]),
                       tuple(document["mean"]), tuple(document["std"]),
                       tuple((int(file), int(start)) for file, start in document["starts"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{path}: not a ravelive latent corpus ({error}); rerun `ravelive latents`") from None

    @property
    def count(self) -> int:
        return len(self.starts)

    def sequences(self) -> np.ndarray:
        """The normalised sequences, float32 [count, dims, length], memory-mapped read-only."""
        return np.load(self.folder / SEQUENCES_NAME, mmap_mode="r")

    def denormalise(self, z: np.ndarray) -> np.ndarray:
        """Normalised latents [..., dims, frames] back to the model's own scale, for its `decode`."""
        return z * np.asarray(self.std, dtype=np.float32)[:, None] + np.asarray(self.mean, dtype=np.float32)[:, None]

    def check_model(self, model: NNModel) -> None:
        """ConfigError unless `model` decodes latents of this corpus's size, ratio and rate."""
        self.model.check_decoder(model, f"{self.folder} holds",
                                 f"or encode the corpus again with `ravelive latents {model.path.name} ...`")

    def check_encoder(self, model: NNModel) -> None:
        """`check_model`, and a warning when `model` is not the very file that encoded the corpus (another sha256).

        Only warned: the same model exported again under another file name has another sha256, and its latents
        are these; a model that merely has their shape is the user's call.
        """
        self.check_model(model)
        digest = file_sha256(model.path)
        if digest != self.model.sha256:
            logger.warning("%s was encoded by %s (sha256 %s), not by %s (sha256 %s): the latents have its shape, "
                           "but what is learnt is %s's; pass that model, or encode the corpus again with `ravelive "
                           "latents %s ...`", self.folder, self.model.name, self.model.sha256[:12], model.path.name,
                           digest[:12], self.model.name, model.path.name)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": VERSION, "model": asdict(self.model),
            "files": [asdict(file) for file in self.files], "length": self.length, "count": self.count,
            "mean": list(self.mean), "std": list(self.std), "starts": [list(start) for start in self.starts],
        }, indent=1)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def encode_corpus(
    model_path: Path, inputs: Sequence[Path], out: Path, length: int = DEFAULT_LENGTH,
    on_progress: Callable[[int], None] | None = None, on_skip: Callable[[Skipped], None] | None = None,
) -> LatentCorpus:
    """Encode `inputs` (audio files, found as `preprocess` finds them) into the corpus `out`; see the module."""
    from ravelive.training.preprocess import find_audio

    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise ConfigError(f"--length {length!r}: expected a whole number of latent frames from 1 to {MAX_LENGTH}")
    sources = find_audio(inputs)
    model = NNModel.load(model_path)
    identity = _identity(model_path, model)
    out = Path(out)
    done = _previous_files(out, identity)
    (out / ENCODED_DIR).mkdir(parents=True, exist_ok=True)
    files = []
    for source in sources:
        stat = source.stat()
        previous = done.get(str(source))
        if previous is not None and (previous.size, previous.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            files.append(previous)
            if on_progress is not None:
                on_progress(_frames(source))
            continue
        try:
            frames = _encode_file(model, source, on_progress)
        except AudioFileError as error:
            if on_skip is not None:
                on_skip(Skipped(source, str(error)))
            continue
        if not model.reset_state():  # the next file starts from fresh streaming caches
            model = NNModel.load(model_path)
        key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:16]
        _save_array(out / ENCODED_DIR / f"{key}.npy", frames)
        files.append(EncodedFile(str(source), stat.st_size, stat.st_mtime_ns, key, frames.shape[1]))
        _write_meta(out, LatentCorpus(out, identity, tuple(files), length, (), (), ()))  # resume point
    return _cut_sequences(out, identity, files, length)


def _identity(model_path: Path, model: NNModel) -> ModelIdentity:
    encode = model.methods.get("encode")
    if encode is None or model.sample_rate is None:
        raise ConfigError(f"{model_path}: no encode method or no sample rate; latents need a RAVE-style model "
                          f"with encode and decode (methods here: {', '.join(model.methods)})")
    latent, training = model.described("latent") or {}, model.described("training") or {}
    return ModelIdentity(Path(model_path).name, file_sha256(model_path), model.sample_rate, encode.out_ratio,
                         encode.out_channels, latent.get("digest"), training.get("step"))


def file_sha256(path: str | Path) -> str:
    """The identity a corpus records of its model file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _previous_files(out: Path, identity: ModelIdentity) -> dict[str, EncodedFile]:
    """Files already encoded in `out` by the same model; ConfigError when another model encoded them."""
    if not (out / META_NAME).exists():
        return {}
    previous = LatentCorpus.open(out)
    if previous.model.sha256 != identity.sha256:
        raise ConfigError(f"{out} holds latents of {previous.model.name} (sha256 {previous.model.sha256[:12]}), "
                          f"not of {identity.name} ({identity.sha256[:12]}): give another --out")
    return {file.path: file for file in previous.files if (out / ENCODED_DIR / f"{file.key}.npy").exists()}


def total_frames(inputs: Sequence[Path]) -> int:
    """Frames of the audio files under `inputs`, for a progress bar (an unreadable one counts 0: it is skipped)."""
    from ravelive.training.preprocess import find_audio

    return sum(_frames(path) for path in find_audio(inputs))


def _frames(path: Path) -> int:
    try:
        return soundfile.info(str(path)).frames
    except _READ_ERRORS:
        return 0


def _encode_file(model: NNModel, path: Path, on_progress: Callable[[int], None] | None) -> np.ndarray:
    """The latent frames of one file, float32 [dims, frames]: one per `ratio` samples at the model's rate."""
    try:
        source = soundfile.SoundFile(str(path))
    except _READ_ERRORS as error:
        raise AudioFileError(f"unreadable ({one_line(error)})") from error
    with source:
        engine = StreamEngine(model, "encode", sample_rate=source.samplerate, channels=source.channels)
        blocks: list[np.ndarray] = []
        engine.latent_sink = lambda z: blocks.append(z.copy())
        try:
            for chunk in source.blocks(blocksize=CHUNK_FRAMES, dtype="float32", always_2d=True):
                engine.push(np.ascontiguousarray(chunk.T))
                if on_progress is not None:
                    on_progress(len(chunk))
        except _READ_ERRORS as error:
            raise AudioFileError(f"corrupt while decoding ({one_line(error)})") from error
        engine.push(np.zeros((source.channels, engine.latency + engine.block), dtype=np.float32))  # the last block
        wanted = source.frames * model.sample_rate // source.samplerate // engine.model.methods["encode"].out_ratio
    frames = np.concatenate(blocks, axis=1) if blocks else np.zeros((engine.output_channels, 0), np.float32)
    return frames[:, :wanted]


def _cut_sequences(out: Path, identity: ModelIdentity, files: list[EncodedFile], length: int) -> LatentCorpus:
    """Statistics over every frame, then `sequences.npy`; ConfigError when no file holds one whole sequence."""
    starts = tuple((index, start) for index, file in enumerate(files) for start in _windows(file, length))
    if not starts:
        seconds = length * identity.ratio / identity.sample_rate
        longest = max((file.frames for file in files), default=0)
        raise ConfigError(f"no sequence of {length} latent frames ({seconds:.1f} s): the longest of {len(files)} "
                          f"encoded file(s) has {longest} frames; lower --length or add longer audio")
    total = np.zeros(identity.dims)
    squares = np.zeros(identity.dims)
    count = 0
    for file in files:  # float64 sums, one file in memory at a time
        frames = np.load(out / ENCODED_DIR / f"{file.key}.npy").astype(np.float64)
        total += frames.sum(axis=1)
        squares += (frames**2).sum(axis=1)
        count += frames.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[std == 0] = 1.0  # a constant dimension stays constant (0 after normalising) instead of dividing by 0
    partial = out / (SEQUENCES_NAME + ".partial")
    sequences = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32,
                                          shape=(len(starts), identity.dims, length))
    row = 0
    for file in files:
        frames = np.load(out / ENCODED_DIR / f"{file.key}.npy", mmap_mode="r")
        for start in _windows(file, length):
            sequences[row] = (frames[:, start : start + length] - mean[:, None]) / std[:, None]
            row += 1
    sequences.flush()
    del sequences
    os.replace(partial, out / SEQUENCES_NAME)
    corpus = LatentCorpus(out, identity, tuple(files), length, tuple(mean.tolist()), tuple(std.tolist()), starts)
    _write_meta(out, corpus)
    return corpus


def _windows(file: EncodedFile, length: int) -> range:
    """First frames of the file's back-to-back sequences."""
    return range(0, file.frames - length + 1, length)


def _save_array(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.save(handle, array)
    os.replace(partial, path)


def _write_meta(out: Path, corpus: LatentCorpus) -> None:
    partial = out / (META_NAME + ".partial")
    partial.write_text(corpus.to_json())
    os.replace(partial, out / META_NAME)
