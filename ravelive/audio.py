"""Where realtime audio comes from and goes to: PortAudio devices, files, and a clock.

`AudioPath` drives a period callback `(indata, outdata, xrun)` either from a
PortAudio duplex stream (sounddevice) or, without a sound card, from a clock
thread that keeps real time from absolute deadlines (it never drifts). An
input file replaces the captured input (looped, preloaded, copied without
allocation); an output file records what is played through a ring that a
writer thread drains, so the callback never touches the disk.

PortAudio's errors become one-line `AudioDeviceError`s naming the device and
the fix; `list_devices` is what `ravelive devices` prints.
"""

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

from ravelive.errors import AudioDeviceError, AudioFileError, one_line

log = logging.getLogger(__name__)

Callback = Callable[[np.ndarray | None, np.ndarray, bool], None]  # (input [n, ch] or None, output [n, ch], xrun)
_RECORD_SECONDS = 4.0  # recording ring: how long the disk may stall before recorded audio is lost
_WRITER_POLL = 0.05  # seconds between the recorder's drains


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    input_channels: int
    output_channels: int
    default_sample_rate: float
    default_input: bool
    default_output: bool


@dataclass(frozen=True)
class AudioSettings:
    sample_rate: int  # Hz, device and stream
    channels: int  # channels in and out
    period: int  # frames per callback
    input_device: int | str | None = None  # PortAudio index or name substring; None: the default
    output_device: int | str | None = None
    input_file: Path | None = None  # replaces the captured input, looped
    output_file: Path | None = None  # records what is played
    use_device: bool = True  # False: the clock thread paces the files, no sound card needed


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # PortAudio itself is missing
        raise AudioDeviceError(
            f"PortAudio cannot be loaded ({one_line(error)}); install it (Debian: apt-get install libportaudio2)"
        ) from error
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device with its host API (ALSA, JACK, CoreAudio, WASAPI ...), channels and rate."""
    sd = _sounddevice()
    apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    return [
        DeviceInfo(
            index=device["index"],
            name=device["name"],
            host_api=apis[device["hostapi"]]["name"],
            input_channels=device["max_input_channels"],
            output_channels=device["max_output_channels"],
            default_sample_rate=device["default_samplerate"],
            default_input=device["index"] == default_in,
            default_output=device["index"] == default_out,
        )
        for device in sd.query_devices()
    ]


def has_output_device() -> bool:
    """Whether PortAudio sees any device that can play."""
    return any(device.output_channels > 0 for device in list_devices())


def device_sample_rate(device: int | str | None) -> int:
    """The rate a stream on output `device` (None: the default) runs at unless told otherwise: its own.

    A JACK device reports the server's rate, the only one JACK can run; ALSA, PipeWire and CoreAudio
    devices report their default rate (48 kHz on most interfaces).
    """
    sd = _sounddevice()
    try:
        return int(sd.query_devices(device, "output")["default_samplerate"])
    except (ValueError, sd.PortAudioError) as error:
        raise AudioDeviceError(
            f"audio device {device if device is not None else 'default'!r} cannot play ({one_line(error)}); "
            f"pick an output device `ravelive devices` lists"
        ) from error


class FileInput:
    """A whole audio file in memory, played in a loop at the stream's rate and channel count."""

    def __init__(self, path: Path, sample_rate: int, channels: int):
        try:
            audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioFileError(f"{path}: cannot be read as audio ({one_line(error)}); give a WAV, FLAC or OGG file") from error
        if not len(audio):
            raise AudioFileError(f"{path}: holds no audio frames; give a file with sound in it")
        if rate != sample_rate:
            import soxr

            log.info("%s: converting %d Hz to the stream's %d Hz", path, rate, sample_rate)
            audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
        if audio.shape[1] != channels:
            audio = np.repeat(audio[:, :1], channels, axis=1) if audio.shape[1] == 1 else audio[:, :channels]
            if audio.shape[1] < channels:
                audio = np.pad(audio, ((0, 0), (0, channels - audio.shape[1])))
        self.audio = np.ascontiguousarray(audio)
        self._position = 0

    def read_into(self, target: np.ndarray) -> np.ndarray:
        """Fill `target` [n, ch] with the next frames, wrapping to the start; returns `target`."""
        done = 0
        while done < len(target):
            take = min(len(target) - done, len(self.audio) - self._position)
            target[done : done + take] = self.audio[self._position : self._position + take]
            done += take
            self._position = (self._position + take) % len(self.audio)
        return target


class FileRecorder:
    """Records played periods to a file: the callback copies into a ring, a thread writes to disk."""

    def __init__(self, path: Path, sample_rate: int, channels: int):
        try:
            self._file = soundfile.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype="FLOAT")
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioFileError(f"{path}: cannot be written ({one_line(error)}); give a writable .wav or .flac path") from error
        self._ring = np.zeros((int(_RECORD_SECONDS * sample_rate), channels), dtype=np.float32)
        self._written = 0  # callback: frames copied in
        self._saved = 0  # writer: frames on disk
        self.lost_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain_loop, name="ravelive-recorder", daemon=True)
        self._thread.start()

    def write(self, frames: np.ndarray) -> None:
        """Callback side: copy `frames` [n, ch] into the ring (no disk, no allocation of audio)."""
        size = len(self._ring)
        if self._written + len(frames) - self._saved > size:
            self.lost_frames += len(frames)
            return
        start = self._written % size
        first = min(len(frames), size - start)
        self._ring[start : start + first] = frames[:first]
        self._ring[: len(frames) - first] = frames[first:]
        self._written += len(frames)

    def _drain(self) -> None:
        size = len(self._ring)
        end = self._written
        while self._saved < end:
            start = self._saved % size
            take = min(end - self._saved, size - start)
            self._file.write(self._ring[start : start + take])
            self._saved += take

    def _drain_loop(self) -> None:
        while not self._stop.wait(_WRITER_POLL):
            self._drain()

    def close(self) -> None:
        """Write what is left and close the file."""
        self._stop.set()
        self._thread.join()
        self._drain()
        self._file.close()


class AudioPath:
    """Runs `callback` once per period from a device or the clock, with the file taps around it."""

    def __init__(self, settings: AudioSettings, callback: Callback):
        self.settings = settings
        self._callback = callback
        self._input = (
            FileInput(settings.input_file, settings.sample_rate, settings.channels) if settings.input_file else None
        )
        self._input_buffer = np.zeros((settings.period, settings.channels), dtype=np.float32)
        self._recorder = (
            FileRecorder(settings.output_file, settings.sample_rate, settings.channels) if settings.output_file else None
        )
        self._stream = None
        self._clock: threading.Thread | None = None
        self._stop = threading.Event()
        self.description = "clock (no sound card)"

    def _period(self, indata: np.ndarray | None, outdata: np.ndarray, xrun: bool) -> None:
        if self._input is not None:
            indata = self._input.read_into(self._input_buffer[: len(outdata)])
        self._callback(indata, outdata, xrun)
        if self._recorder is not None:
            self._recorder.write(outdata)

    def start(self) -> None:
        if self.settings.use_device:
            self._open_device()
        else:
            self._clock = threading.Thread(target=self._run_clock, name="ravelive-clock", daemon=True)
            self._clock.start()

    def _open_device(self) -> None:
        sd = _sounddevice()
        s = self.settings

        def device_callback(indata, outdata, frames, times, status):
            self._period(indata, outdata, bool(status.input_overflow or status.output_underflow
                                               or status.input_underflow or status.output_overflow))

        try:
            self._stream = sd.Stream(
                samplerate=s.sample_rate, blocksize=s.period, channels=s.channels, dtype="float32",
                device=(s.input_device, s.output_device), callback=device_callback, latency="low",
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as error:
            raise AudioDeviceError(
                f"audio device {s.input_device or 'default'}/{s.output_device or 'default'} cannot run "
                f"{s.channels} channels at {s.sample_rate} Hz, period {s.period}: {one_line(error)}; "
                f"check `ravelive devices` and pick a device or settings it lists"
            ) from error
        device = self._stream.device
        names = [sd.query_devices(index)["name"] for index in device]
        api = sd.query_hostapis(sd.query_devices(device[1])["hostapi"])["name"]
        self.description = f"{api}: in '{names[0]}', out '{names[1]}'"

    def _run_clock(self) -> None:
        s = self.settings
        outdata = np.zeros((s.period, s.channels), dtype=np.float32)
        period_seconds = s.period / s.sample_rate
        deadline = time.monotonic()
        while not self._stop.is_set():
            self._period(None, outdata, False)
            deadline += period_seconds
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def stop(self) -> None:
        """Stop the audio and close the files; safe to call twice."""
        self._stop.set()
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        if self._clock is not None:
            self._clock.join()
            self._clock = None
        if self._recorder is not None:
            self._recorder.close()
            if self._recorder.lost_frames:
                log.warning("the recording lost %d frames: the disk was too slow", self._recorder.lost_frames)
            self._recorder = None
