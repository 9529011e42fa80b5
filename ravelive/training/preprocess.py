"""Audio files and folders -> a training dataset (`ravelive preprocess`).

Two steps, so that a progress bar knows its length before any decoding:
`plan` walks the inputs, reads every header and sorts the files into done
(already in the dataset, same size and mtime), to do, and skipped (with the
reason: unreadable, too short); `run` decodes the files to do, appends their
frames to the data file and commits the index after each file. A rerun
therefore costs one `stat` per done file, and an interrupted run loses at
most the file it was writing (the index never counts frames that were not
all written; the next run cuts them off).

A file whose data turns out corrupt midway, or shorter than its header
said, is skipped like the others and its partial frames are cut off again.
A file that changed since it was stored is stored anew; its old frames stay
in the data file unused (delete the dataset folder to reclaim them). A file
moved since (same name, size and mtime elsewhere) counts as done, so moving
the corpus does not store it twice. A lazy index drops, on each run, the
files that vanished or changed since (it could not read them any more).

An empty result is an error that says why, before anything is written.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ravelive.engine.offline import AUDIO_EXTENSIONS
from ravelive.errors import AudioFileError, ConfigError
from ravelive.training import EXAMPLE_LENGTH, SAMPLE_RATE
from ravelive.training.dataset import (
    DATA_NAME, DTYPE, META_NAME, DatasetMeta, Source, quantise, read_meta, with_sources, write_meta,
)
from ravelive.training.decode import SourceInfo, decode_chunks, probe, target_frames


@dataclass(frozen=True)
class PreprocessSettings:
    """What the dataset is made of; a rerun into the same folder must give the same values."""

    sample_rate: int = SAMPLE_RATE  # Hz; every file is resampled to it (soxr HQ)
    channels: int = 1  # every file is mixed down or spread to this many (dsp.channels' rule)
    example_length: int = EXAMPLE_LENGTH  # frames per training example; shorter files are skipped
    lazy: bool = False  # index only; decode at training time (no copy of the audio, slower reads)


@dataclass(frozen=True)
class Skipped:
    """A file left out of the dataset and why."""

    path: Path
    reason: str
    too_short: bool = False  # False: unreadable


@dataclass(frozen=True)
class Plan:
    """The outcome of `plan`: what `run` will decode."""

    out: Path
    settings: PreprocessSettings
    meta: DatasetMeta  # the dataset as it is now (empty for a new one)
    todo: tuple[SourceInfo, ...]
    done: tuple[Path, ...]  # already in the dataset
    skipped: tuple[Skipped, ...]

    @property
    def total_frames(self) -> int:
        """Source frames `run` will decode (a progress bar's length)."""
        return sum(info.frames for info in self.todo)


@dataclass(frozen=True)
class Report:
    """What `run` did."""

    dataset: Path
    added: tuple[Path, ...]
    done: tuple[Path, ...]
    skipped: tuple[Skipped, ...]
    examples: int  # in the whole dataset now


def find_audio(inputs: Sequence[Path]) -> list[Path]:
    """Audio files named or found (recursively, by extension) under `inputs`, sorted, each once."""
    found: dict[Path, Path] = {}
    for path in map(Path, inputs):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in AUDIO_EXTENSIONS:
                    found.setdefault(file.resolve(), file)
        elif path.exists():
            found.setdefault(path.resolve(), path)  # named explicitly: tried whatever its extension
        else:
            raise AudioFileError(f"{path}: no such file or folder; give audio files or folders to preprocess")
    if not found:
        raise AudioFileError(f"no audio files in {', '.join(map(str, inputs))} (looked for "
                             f"{', '.join(sorted(AUDIO_EXTENSIONS))}); give files or folders that hold audio")
    return sorted(found.values())


def plan(inputs: Sequence[Path], out: Path, settings: PreprocessSettings = PreprocessSettings()) -> Plan:
    """Sort the files under `inputs` into done, to do and skipped, against the dataset at `out`."""
    _check_settings(settings)
    out = Path(out)
    meta = _existing(out, settings)
    stored = {source.path: source for source in meta.sources}
    moved = {(Path(source.path).name, source.size, source.mtime_ns): source for source in meta.sources}
    files = find_audio(inputs)
    todo, done, skipped = [], [], []
    for path in files:
        entry = stored.get(str(path.resolve()))
        if (entry is not None and entry.same_file(path)) or (not settings.lazy and _moved(path, moved)):
            done.append(path)
            continue
        try:
            info = probe(path)
        except AudioFileError as error:
            skipped.append(Skipped(path, str(error).removeprefix(f"{path}: ")))
            continue
        frames = target_frames(info.frames, info.sample_rate, settings.sample_rate)
        if frames < settings.example_length:
            skipped.append(Skipped(path, _too_short(frames, settings), too_short=True))
        else:
            todo.append(info)
    result = Plan(out, settings, meta, tuple(todo), tuple(done), tuple(skipped))
    if not todo and _examples(meta) == 0:
        raise AudioFileError(_empty_reason(len(files), result.skipped, settings))
    return result


def run(plan: Plan, on_progress: Callable[[int], None] | None = None,
        on_skip: Callable[[Skipped], None] | None = None) -> Report:
    """Decode the files `plan` found to do into its dataset.

    `on_progress(n)` after each n source frames; `on_skip(skipped)` for each
    file found corrupt or short only while decoding (before an empty result
    is refused, so a caller can list them first).
    """
    plan.out.mkdir(parents=True, exist_ok=True)
    progress = on_progress or (lambda frames: None)
    if plan.settings.lazy:
        added, skipped, meta = _index(plan, progress)
    else:
        added, skipped, meta = _store(plan, progress, on_skip or (lambda skipped: None))
    if _examples(meta) == 0:
        if not meta.sources:
            (plan.out / DATA_NAME).unlink(missing_ok=True)
        raise AudioFileError(_empty_reason(len(plan.todo) + len(plan.skipped), skipped, plan.settings))
    return Report(plan.out, tuple(added), plan.done, skipped, _examples(meta))


def preprocess(inputs: Sequence[Path], out: Path, settings: PreprocessSettings = PreprocessSettings(),
               on_progress: Callable[[int], None] | None = None) -> Report:
    """`plan` then `run`: the whole of `ravelive preprocess` (the report lists every skipped file)."""
    return run(plan(inputs, out, settings), on_progress)


def _store(plan: Plan, progress: Callable[[int], None],
           on_skip: Callable[[Skipped], None]) -> tuple[list[Path], tuple[Skipped, ...], DatasetMeta]:
    """Append every file to do to the data file; commit the index after each."""
    settings, meta = plan.settings, plan.meta
    added, skipped = [], list(plan.skipped)
    frame_bytes = settings.channels * DTYPE.itemsize
    path = plan.out / DATA_NAME
    path.touch()
    with open(path, "r+b") as data:
        data.truncate(meta.frames * frame_bytes)  # frames of a run that was interrupted: never committed
        for info in plan.todo:
            data.seek(meta.frames * frame_bytes)
            written = 0
            try:
                for chunk, consumed in decode_chunks(info.path, settings.sample_rate, settings.channels):
                    data.write(quantise(chunk).tobytes())
                    written += len(chunk)
                    progress(consumed)
            except AudioFileError as error:
                data.truncate(meta.frames * frame_bytes)
                skipped.append(Skipped(info.path, str(error).removeprefix(f"{info.path}: ")))
                on_skip(skipped[-1])
                continue
            if written < settings.example_length:  # the header promised more than the data holds
                data.truncate(meta.frames * frame_bytes)
                skipped.append(Skipped(info.path, _too_short(written, settings), too_short=True))
                on_skip(skipped[-1])
                continue
            data.flush()
            meta = with_sources(meta, [_source(info, meta.frames, written)], meta.frames + written)
            write_meta(plan.out, meta)
            added.append(info.path)
    return added, tuple(skipped), meta


def _index(plan: Plan, progress: Callable[[int], None]) -> tuple[list[Path], tuple[Skipped, ...], DatasetMeta]:
    """Lazy mode: record the files to do, with the frame counts their headers give."""
    rate = plan.settings.sample_rate
    sources = [_source(info, 0, target_frames(info.frames, info.sample_rate, rate)) for info in plan.todo]
    present = tuple(source for source in plan.meta.sources if source.same_file(Path(source.path)))
    meta = with_sources(replace(plan.meta, sources=present), sources, 0)  # a vanished file cannot be read
    write_meta(plan.out, meta)
    progress(plan.total_frames)
    return [info.path for info in plan.todo], plan.skipped, meta


def _moved(path: Path, moved: dict[tuple[str, int, int], Source]) -> bool:
    """Whether `path` is a stored file that was moved (same name, size and mtime): storing it again would
    count its examples twice."""
    try:
        stat = path.stat()
    except OSError:
        return False
    return (path.name, stat.st_size, stat.st_mtime_ns) in moved


def _source(info: SourceInfo, offset: int, frames: int) -> Source:
    stat = info.path.stat()
    return Source(str(info.path.resolve()), stat.st_size, stat.st_mtime_ns, info.sample_rate, info.channels,
                  info.frames, offset, frames)


def _existing(out: Path, settings: PreprocessSettings) -> DatasetMeta:
    """The dataset already at `out`, refused when made with other settings; an empty one otherwise."""
    fresh = DatasetMeta(settings.sample_rate, settings.channels, settings.example_length, settings.lazy)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the dataset")
    if not (out / META_NAME).exists():
        return fresh
    meta = read_meta(out)
    for option, theirs, ours in (("--samplerate", meta.sample_rate, settings.sample_rate),
                                 ("--channels", meta.channels, settings.channels),
                                 ("--example-length", meta.example_length, settings.example_length),
                                 ("--lazy", meta.lazy, settings.lazy)):
        if theirs != ours:
            raise ConfigError(f"dataset {out} was made with {option} {theirs}, not {ours}: "
                              f"give {option} {theirs} to add to it, or another --out")
    return meta


def _check_settings(settings: PreprocessSettings) -> None:
    for option, value in (("--samplerate", settings.sample_rate), ("--channels", settings.channels),
                          ("--example-length", settings.example_length)):
        if value < 1:
            raise ConfigError(f"{option} {value} must be a positive whole number")


def _examples(meta: DatasetMeta) -> int:
    return sum(meta.examples(source) for source in meta.sources)


def _too_short(frames: int, settings: PreprocessSettings) -> str:
    return (f"{frames} samples at {settings.sample_rate} Hz ({frames / settings.sample_rate:.2f} s), "
            f"shorter than one example of {settings.example_length} samples")


def _empty_reason(files: int, skipped: Sequence[Skipped], settings: PreprocessSettings) -> str:
    """Why no example came out of `files` files: the one line an empty dataset is refused with."""
    short = sum(1 for s in skipped if s.too_short)
    unreadable = len(skipped) - short
    length = settings.example_length
    every = "the only file is" if files == 1 else f"all {files} files are"
    if short == files:
        return f"{every} shorter than one example of {length} samples: lower --example-length"
    if unreadable == files:
        first = skipped[0]
        none = "the only file could not" if files == 1 else f"none of the {files} files could"
        return (f"{none} be read ({first.path}: "
                f"{first.reason}); give files soundfile reads (wav, flac, aiff, ogg, mp3)")
    return (f"no examples from {files} files: {unreadable} unreadable, {short} shorter than one example of "
            f"{length} samples (each listed above); lower --example-length or give other files")
