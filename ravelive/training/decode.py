"""Audio files -> frames at the dataset's rate and channel count, whole or one window at a time.

Both the preprocessor (which stores the frames) and a lazy dataset (which
decodes at training time) go through here, so both see the same frames:

- channels follow the engine's rule (`dsp.channels.ChannelMap`): several
  into one are averaged, otherwise channel i takes source channel i modulo
  the source count (mono is duplicated, extra channels dropped);
- the rate is converted by soxr (HQ), time-aligned: output frame j is the
  source at time j / rate;
- a source of n frames at rate r gives exactly `target_frames(n, r, rate)`
  = floor(n * rate / r) frames, trimmed or zero-padded to that, so a frame
  count known from the header alone (lazy mode) matches the decoded one.

`decode_window` resamples only a window around the frames asked for: it
starts on a frame where both rates meet on a whole sample (multiples of
r / gcd) so its output grid is the whole file's, and reads `WINDOW_PAD`
extra frames each side so soxr's filter edges fall outside the frames kept.
Its frames equal the whole file's to float rounding (~1e-7).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from ravelive.dsp.channels import ChannelMap
from ravelive.errors import AudioFileError, one_line

CHUNK_FRAMES = 65536  # source frames decoded at a time: memory stays constant whatever the file's length
WINDOW_PAD = 1024  # extra output frames resampled each side of a window; soxr HQ's filter edges are shorter
QUALITY = "HQ"  # soxr's high quality: 0.91 passband, >100 dB stopband; VHQ costs twice as much for no audible gain
_HOLD = 256  # output frames held back: more than soxr ever returns past floor(n * rate / source rate)
_READ_ERRORS = (soundfile.LibsndfileError, RuntimeError, OSError)


@dataclass(frozen=True)
class SourceInfo:
    """What the header says about one audio file."""

    path: Path
    sample_rate: int
    channels: int
    frames: int  # in the file's own rate


def probe(path: Path) -> SourceInfo:
    """The header of `path`; AudioFileError with libsndfile's reason when it is no audio soundfile reads."""
    try:
        info = soundfile.info(str(path))
    except _READ_ERRORS as error:
        raise AudioFileError(unreadable(path, error)) from error
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioFileError(f"{path}: holds no audio frames")
    return SourceInfo(Path(path), int(info.samplerate), int(info.channels), int(info.frames))


def target_frames(frames: int, source_rate: int, rate: int) -> int:
    """Frames a source of `frames` at `source_rate` has at `rate` (integer arithmetic: no rounding drift)."""
    return frames * rate // source_rate


def decode_chunks(path: Path, rate: int, channels: int) -> Iterator[tuple[np.ndarray, int]]:
    """The whole file as float32 chunks [n, channels] at `rate`, each with the source frames it consumed.

    The last chunk trims or pads the total to `target_frames` of the frames
    actually decoded (a header may count a few frames more than the data
    holds). AudioFileError when the data turns out unreadable midway.
    """
    with _open(path) as source:
        mapper = ChannelMap(source.channels, channels)
        resampler = None
        if source.samplerate != rate:
            resampler = soxr.ResampleStream(source.samplerate, rate, channels, dtype="float32", quality=QUALITY)
        decoded = emitted = 0
        held = np.zeros((0, channels), dtype=np.float32)  # the newest frames, kept back until the count is known
        for block in _blocks(path, source):
            decoded += len(block)
            out = _map(mapper, block, channels)
            if resampler is not None:
                out = resampler.resample_chunk(out, last=False)
            out = np.concatenate([held, out])
            held = out[len(out) - _HOLD :] if len(out) > _HOLD else out
            out = out[: len(out) - len(held)]
            emitted += len(out)
            yield out, len(block)
        if resampler is not None:
            held = np.concatenate([held, resampler.resample_chunk(np.zeros((0, channels), np.float32), last=True)])
        yield _fit(held, max(0, target_frames(decoded, source.samplerate, rate) - emitted), channels), 0


def decode_window(source: SourceInfo, rate: int, channels: int, start: int, length: int) -> np.ndarray:
    """Frames [start, start + length) of `source` at `rate` as float32 [length, channels] (zero past the end)."""
    if source.sample_rate == rate:
        out = _map(ChannelMap(source.channels, channels), _read(source, start, start + length), channels)
        return _fit(out, length, channels)
    step_in, step_out = _grid(source.sample_rate, rate)
    begin = max(0, (start - WINDOW_PAD) // step_out) * step_out  # an output frame on the shared grid
    end = start + length + WINDOW_PAD
    begin_in = begin // step_out * step_in
    end_in = min(source.frames, -(-end * step_in // step_out) + 1)
    block = _read(source, begin_in, end_in)
    mapped = _map(ChannelMap(source.channels, channels), block, channels)
    resampled = soxr.resample(mapped, source.sample_rate, rate, quality=QUALITY)
    total = target_frames(source.frames, source.sample_rate, rate)
    out = resampled[start - begin : start - begin + length]
    out = _fit(out, min(length, max(0, total - start)), channels)  # past the file's exact length: not audio
    return _fit(out, length, channels)


def unreadable(path: Path, error: BaseException) -> str:
    """The one-line reason a file cannot be decoded."""
    return f"{path}: cannot read audio ({one_line(error)})"


def _grid(source_rate: int, rate: int) -> tuple[int, int]:
    """(source frames, output frames) of the smallest stretch where both rates land on whole samples."""
    common = math.gcd(source_rate, rate)
    return source_rate // common, rate // common


def _open(path: Path) -> soundfile.SoundFile:
    try:
        return soundfile.SoundFile(str(path))
    except _READ_ERRORS as error:
        raise AudioFileError(unreadable(path, error)) from error


def _blocks(path: Path, source: soundfile.SoundFile) -> Iterator[np.ndarray]:
    blocks = source.blocks(blocksize=CHUNK_FRAMES, dtype="float32", always_2d=True)
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return
        except _READ_ERRORS as error:
            raise AudioFileError(unreadable(path, error)) from error
        yield block


def _read(source: SourceInfo, start: int, stop: int) -> np.ndarray:
    try:
        return soundfile.read(str(source.path), start=start, stop=min(stop, source.frames),
                              dtype="float32", always_2d=True)[0]
    except _READ_ERRORS as error:
        raise AudioFileError(unreadable(source.path, error)) from error


def _map(mapper: ChannelMap, block: np.ndarray, channels: int) -> np.ndarray:
    """block [n, source channels] -> [n, channels], contiguous (soxr wants frames-major)."""
    if mapper.source == channels:
        return np.ascontiguousarray(block)
    out = np.empty((channels, len(block)), dtype=np.float32)
    mapper.write(out, block.T)
    return np.ascontiguousarray(out.T)


def _fit(block: np.ndarray, length: int, channels: int) -> np.ndarray:
    """block cut or zero-padded to `length` frames."""
    if len(block) >= length:
        return block[:length]
    return np.concatenate([block, np.zeros((length - len(block), channels), dtype=np.float32)])
