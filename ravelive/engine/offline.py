"""Files and folders through StreamEngine in constant memory (`ravelive process`).

Each file is read in chunks, pushed through `FixedLatency(StreamEngine)` at
the file's own sample rate and channel count (the engine converts to the
model's rate and channels), and written chunk by chunk with the engine's
output channels: the file's own for an audio effect, one per latent
dimension for `encode` (held at audio rate), the model's audio channels for
`decode` (which reads one latent dimension per input channel). The first `latency`
output samples are dropped and `latency` samples of silence flushed at the
end, so every output is aligned with its input and has its length.

Every file gets a freshly loaded model, so one file's streaming state
(cached convolutions) never leaks into the next.

`--preset NAME` applies a preset saved by `serve` (control/presets.py)
before the `--set` and `--latent-*` options, which override it: its model
attributes, its latent edits (bias, scale, freeze, replace, noise) and its
input and output gains. Not its method (give `--method`), nor mix and
bypass: the output is the processed signal.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from ravelive.control.model_params import ControlSnapshot, ModelControls
from ravelive.control.presets import PresetLibrary, default_presets_dir
from ravelive.dsp.resample import QUALITY
from ravelive.engine.stream import FixedLatency, StreamEngine
from ravelive.errors import AudioFileError, ConfigError, one_line
from ravelive.models.nn_model import NNModel

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".caf", ".w64", ".rf64"}
)  # what a folder walk picks up; files named explicitly are tried whatever their extension
CHUNK_FRAMES = 65536  # frames read, processed and written at a time: memory stays constant
LATENT_FIELDS = ("bias", "scale", "noise")  # latent edits the CLI offers (`--latent-<field> I=V`)


@dataclass(frozen=True)
class ProcessSettings:
    """How to build the engine for each file."""

    model_path: Path  # the nn~ model file
    method: str | None = None  # None: forward, or the model's first method
    block: int | None = None  # model block in samples; None: the engine's default (stream.BLOCK_FLOOR or more)
    resample_quality: str = QUALITY  # when the file's rate differs from the model's; HQ: soxr, cleanest to 20 kHz
    attributes: tuple[tuple[str, str], ...] = ()  # (name, value text) set on the model before streaming
    latent: tuple[tuple[str, int, float], ...] = ()  # (field, dimension, value) edits of the latent transform
    preset: str | None = None  # a serve preset applied first (attributes, latent, gains); None: none
    presets_dir: Path | None = None  # where `preset` is read; None: control.presets.default_presets_dir()


@dataclass(frozen=True)
class ProcessJob:
    """One input file and where its output goes."""

    source: Path
    target: Path


def parse_attribute_setting(text: str) -> tuple[str, str]:
    """`ATTR=VALUE` (VALUE may be a comma-separated list) -> (ATTR, VALUE)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip() or not value.strip():
        raise ConfigError(f"--set {text!r} is not ATTR=VALUE; write e.g. --set gain=0.5 (several values: 1,2)")
    return name.strip(), value.strip()


def parse_latent_setting(field: str, text: str) -> tuple[str, int, float]:
    """`I=V` for latent `field` -> (field, I, V)."""
    index, equals, value = text.partition("=")
    try:
        if not equals:
            raise ValueError(text)
        return field, int(index), float(value)
    except ValueError:
        raise ConfigError(
            f"--latent-{field} {text!r} is not DIMENSION=VALUE; write e.g. --latent-{field} 0=0.5"
        ) from None


def plan_jobs(inputs: Sequence[Path], out: Path) -> list[ProcessJob]:
    """Pair inputs with outputs: one file -> `out` itself; otherwise `out` mirrors files and folders."""
    inputs = [Path(path) for path in inputs]
    for path in inputs:
        if not path.exists():
            raise AudioFileError(f"{path}: no such file or folder; give audio files or folders to process")
    if len(inputs) == 1 and inputs[0].is_file() and not out.is_dir():
        jobs = [ProcessJob(inputs[0], out)]
    else:
        jobs = []
        for path in inputs:
            if path.is_dir():
                found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
                jobs += [ProcessJob(f, out / f.relative_to(path)) for f in found]
            else:
                jobs.append(ProcessJob(path, out / path.name))
    if not jobs:
        raise AudioFileError(
            f"no audio files in {', '.join(map(str, inputs))}; looked for {', '.join(sorted(AUDIO_EXTENSIONS))}"
        )
    targets = [job.target.resolve() for job in jobs]
    if len(set(targets)) < len(targets):
        raise ConfigError(f"several inputs would be written to the same files under {out}; process them separately")
    if set(targets) & {job.source.resolve() for job in jobs}:
        raise ConfigError(f"--out {out} would overwrite an input; write to another file or folder")
    return jobs


def total_frames(jobs: Sequence[ProcessJob]) -> int:
    """Frames in all inputs (for a progress bar); AudioFileError names the first unreadable file."""
    return sum(_read_info(job.source).frames for job in jobs)


def open_engine(settings: ProcessSettings, sample_rate: int, channels: int) -> StreamEngine:
    """A fresh model with the settings applied, streaming at the file's rate and channel count."""
    return _open_engine(settings, sample_rate, channels)[0]


def _open_engine(settings: ProcessSettings, sample_rate: int, channels: int) -> tuple[StreamEngine, float, float]:
    """(engine, input gain, output gain): the preset first, then --set and --latent-* over it."""
    model = NNModel.load(settings.model_path)
    preset = _preset_snapshot(settings, model)
    buffers = model.get_buffer_attributes()
    for name, value in settings.attributes:
        if name in buffers:
            model.set_buffer_attribute_from_file(name, value)  # e.g. --set ir#0=impulse.wav
        else:
            model.set_attribute(name, value)
    engine = StreamEngine(
        model, settings.method, settings.block, sample_rate, channels, resample_quality=settings.resample_quality
    )
    transform = None
    if preset is not None and preset.latent is not None and preset.latent.dims == engine.latent_dims:
        transform = preset.latent
    if settings.latent:
        transform = transform or engine.neutral_latent()
        for field, dim, value in settings.latent:
            transform = transform.with_value(field, dim, value)
    if transform is not None:
        engine.latent = transform
    if preset is None:
        return engine, 1.0, 1.0
    return engine, preset.input_gain, preset.output_gain


def _preset_snapshot(settings: ProcessSettings, model: NNModel) -> ControlSnapshot | None:
    """The controls with `settings.preset` loaded (its changed attributes already set on `model`), or None."""
    if settings.preset is None:
        return None
    controls = ModelControls.from_model(model, method=settings.method)
    store = controls.store()  # defaults: the model's own attribute values
    defaults = store.snapshot().attributes
    for reason in PresetLibrary(settings.presets_dir or default_presets_dir()).load(settings.preset, store).skipped:
        logger.warning("preset %s: %s", settings.preset, reason)
    snapshot = store.snapshot()
    for name, values in snapshot.attributes.items():
        if values != defaults[name]:
            model.set_attribute(name, values)
    return snapshot


def process_files(
    jobs: Sequence[ProcessJob], settings: ProcessSettings, on_progress: Callable[[int], None] | None = None
) -> None:
    """Run every job; `on_progress(frames)` is called after each chunk with the frames just done."""
    for job in jobs:
        process_file(job, settings, on_progress)


def process_file(
    job: ProcessJob, settings: ProcessSettings, on_progress: Callable[[int], None] | None = None
) -> None:
    """Stream one file through a fresh engine into `job.target`, aligned and of the same length."""
    with _open_source(job.source) as source:
        engine, input_gain, output_gain = _open_engine(settings, source.samplerate, source.channels)
        stream = FixedLatency(engine)
        with _open_target(job.target, source, engine.output_channels) as sink:
            skip = stream.latency
            for chunk in _chunks(job.source, source):
                x = np.ascontiguousarray(chunk.T) if input_gain == 1.0 else input_gain * chunk.T
                y = stream.process(x)
                skip = _write(sink, y if output_gain == 1.0 else output_gain * y, skip)
                if on_progress is not None:
                    on_progress(len(chunk))
            flush = stream.latency
            while flush > 0:
                frames = min(flush, CHUNK_FRAMES)
                y = stream.process(np.zeros((source.channels, frames), dtype=np.float32))
                skip = _write(sink, y if output_gain == 1.0 else output_gain * y, skip)
                flush -= frames
    logger.info("%s -> %s (latency %d samples trimmed)", job.source, job.target, stream.latency)


def _write(sink: soundfile.SoundFile, y: np.ndarray, skip: int) -> int:
    """Write y [channels, n] minus its first `skip` frames; return the frames still to skip."""
    dropped = min(skip, y.shape[1])
    sink.write(y[:, dropped:].T)
    return skip - dropped


def _read_info(path: Path) -> soundfile._SoundFileInfo:
    try:
        return soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(_unreadable(path, error)) from error


def _open_source(path: Path) -> soundfile.SoundFile:
    try:
        return soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(_unreadable(path, error)) from error


def _chunks(path: Path, source: soundfile.SoundFile):
    blocks = source.blocks(blocksize=CHUNK_FRAMES, dtype="float32", always_2d=True)
    while True:
        try:
            chunk = next(blocks)
        except StopIteration:
            return
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise AudioFileError(_unreadable(path, error)) from error
        yield chunk


def _open_target(path: Path, source: soundfile.SoundFile, channels: int) -> soundfile.SoundFile:
    extension = path.suffix.lower().lstrip(".")
    audio_format = {"aif": "AIFF", "aifc": "AIFF", "oga": "OGG", "opus": "OGG", "wave": "WAV"}.get(
        extension, extension.upper()
    )
    if audio_format not in soundfile.available_formats():
        raise AudioFileError(f"{path}: cannot write '.{extension}' files; use .wav, .flac, .aiff or .ogg")
    subtype = source.subtype if soundfile.check_format(audio_format, source.subtype) else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return soundfile.SoundFile(
            str(path), "w", samplerate=source.samplerate, channels=channels, format=audio_format, subtype=subtype
        )
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(f"{path}: cannot write audio ({one_line(error)}); check the folder and its permissions") from error


def _unreadable(path: Path, error: BaseException) -> str:
    return f"{path}: cannot read audio ({one_line(error)}); give a file soundfile reads (wav, flac, aiff, ogg, mp3)"
