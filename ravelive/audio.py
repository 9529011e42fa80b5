"""Where realtime audio comes from and goes to: PortAudio devices, files, and a clock.

`AudioPath` runs the realtime path's C callback (`engine.native.CallbackState`)
once per period, either from a PortAudio duplex stream (sounddevice, given
the C function pointer: no Python on the audio thread), from a JACK client of
our own for JACK devices (engine/native/rtjack.c: PortAudio's cannot be
reopened after the server stops), or, without a sound card, from the C clock
thread, which keeps real time from absolute deadlines (it never drifts). An input file replaces the captured input (looped,
preloaded, read by the C callback); an output file records what is played
through a ring (`dsp.fifo.Ring`) that the callback fills and a writer thread
drains, so the callback never touches the disk.

A device that stops (unplugged, JACK stopped) is noticed by a watcher
(the period counter stands still, or the stream is no longer active),
reported (`health()`, `on_state`, one log line), and reopened under the same
name every REOPEN_SECONDS until it returns; the stream timeline carries on,
so the latency is the same afterwards.

PortAudio's errors become one-line `AudioDeviceError`s naming the device and
the fix; `list_devices` is what `ravelive devices` prints. A stream runs at the
device's own rate and, on JACK, the server's own period unless told otherwise
(`device_sample_rate`, `device_period`).
"""

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

from ravelive.dsp.fifo import Ring
from ravelive.engine.native import CallbackState, jack_period
from ravelive.errors import AudioDeviceError, AudioFileError, one_line

log = logging.getLogger(__name__)

_RECORD_SECONDS = 4.0  # recording ring: how long the disk may stall before recorded audio is lost
_WRITER_POLL = 0.05  # seconds between the recorder's drains
STALL_SECONDS = 0.5  # a device whose period counter stands still this long is lost
WATCH_SECONDS = 0.1  # how often the watcher looks at the period counter
REOPEN_SECONDS = 0.5  # a lost device is tried again this often
CLOSE_SECONDS = 1.0  # a lost stream that takes longer to close is abandoned (PortAudio's JACK API waits forever)
JACK_API = "JACK Audio Connection Kit"  # JACK raises its own thread to realtime (when jackd runs with -R)


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
    record_seconds: float | None = None  # the recording stops growing after this long; None: all of it
    use_device: bool = True  # False: the clock thread paces the files, no sound card needed
    audio_priority: int = 0  # SCHED_FIFO priority for the audio thread where the host API leaves it normal; 0: no


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # PortAudio itself is missing
        raise AudioDeviceError(
            f"PortAudio cannot be loaded ({one_line(error)}); install it (Debian: apt-get install libportaudio2)"
        ) from error
    return sounddevice


def _portaudio():
    """sounddevice with PortAudio initialised, to list and open devices: a JACK stream of ours terminates it
    (AudioPath._open_jack), and the next server of the process must find the devices again."""
    sd = _sounddevice()
    if not sd._initialized:
        sd._initialize()
    return sd


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device with its host API (ALSA, JACK, CoreAudio, WASAPI ...), channels and rate."""
    sd = _portaudio()
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
    sd = _portaudio()
    try:
        return int(sd.query_devices(device, "output")["default_samplerate"])
    except (ValueError, sd.PortAudioError) as error:
        raise AudioDeviceError(
            f"audio device {device if device is not None else 'default'!r} cannot play ({one_line(error)}); "
            f"pick an output device `ravelive devices` lists"
        ) from error


def device_period(device: int | str | None) -> int | None:
    """The period a stream on output `device` (None: the default) runs at unless told: a JACK server's own,
    the only one it runs; None for other devices (any period will do) and for a device PortAudio lacks
    (check_device reports it)."""
    sd = _portaudio()
    try:
        output = sd.query_devices(device, "output")
    except (ValueError, sd.PortAudioError):
        return None
    return _jack_server_period() if _on_jack(sd, output) else None


def _on_jack(sd, device: dict) -> bool:
    """Whether a device PortAudio describes (query_devices) belongs to its JACK host API."""
    return sd.query_hostapis(device["hostapi"])["name"] == JACK_API


def _jack_server_period() -> int | None:
    """The running JACK server's period; None if it went away since PortAudio listed it (opening says so)."""
    try:
        return jack_period()
    except OSError:
        return None


def check_device(settings: AudioSettings) -> None:
    """Refuse, before a model warms up, settings the devices cannot run (AudioPath.start's own refusals).

    A JACK server runs one rate and one period: others are refused here, with the fix, rather than after the
    warm-up; other devices are asked whether they take the channels and the rate.
    """
    if not settings.use_device:
        return
    sd = _portaudio()
    try:
        output = sd.query_devices(settings.output_device, "output")
        if _on_jack(sd, output):
            if int(output["default_samplerate"]) != settings.sample_rate:
                raise AudioDeviceError(_jack_refusal(output["name"], settings,
                                                     f"the server runs at {int(output['default_samplerate'])} Hz"))
            period = _jack_server_period()
            if period is not None and period != settings.period:
                raise AudioDeviceError(_jack_refusal(output["name"], settings,
                                                     f"the server runs {period} frames per period"))
            return
        sd.check_input_settings(settings.input_device, channels=settings.channels, dtype="float32",
                                samplerate=settings.sample_rate)
        sd.check_output_settings(settings.output_device, channels=settings.channels, dtype="float32",
                                 samplerate=settings.sample_rate)
    except (ValueError, sd.PortAudioError) as error:
        raise AudioDeviceError(_device_refusal(settings.input_device, settings.output_device, settings, error)) from error


def _device_refusal(input_device, output_device, s: AudioSettings, error: Exception) -> str:
    return (f"audio device {input_device or 'default'}/{output_device or 'default'} cannot run "
            f"{s.channels} channels at {s.sample_rate} Hz, period {s.period}: {one_line(error)}; "
            f"check `ravelive devices` and pick a device or settings it lists")


def _jack_refusal(device: str, s: AudioSettings, reason: str) -> str:
    return (f"JACK client '{device}' cannot run {s.channels} channels at {s.sample_rate} Hz, period {s.period}: "
            f"{reason}; start jackd with -r {s.sample_rate} -p {s.period}, or give serve the server's --samplerate "
            f"and --period")


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
        self.audio = np.ascontiguousarray(audio)  # the C callback loops it


class FileRecorder:
    """Records what is played to a file: the C callback copies each period into a Ring, a thread writes it out."""

    def __init__(self, path: Path, sample_rate: int, channels: int, native: CallbackState,
                 limit_frames: int | None = None):
        try:
            self._file = soundfile.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype="FLOAT")
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioFileError(f"{path}: cannot be written ({one_line(error)}); give a writable .wav or .flac path") from error
        self._ring = Ring(int(_RECORD_SECONDS * sample_rate), channels)
        self._native = native
        self._left = limit_frames  # frames the file may still take (None: no limit)
        native.set_recorder(self._ring)  # positions: `recorded` (callback), `saved` (this writer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain_loop, name="ravelive-recorder", daemon=True)
        self._thread.start()

    @property
    def lost_frames(self) -> int:
        return self._native.counter("record_lost")

    def _drain(self) -> None:
        saved, end = self._native.load("saved"), self._native.load("recorded")
        count = end - saved if self._left is None else min(end - saved, self._left)
        for view in self._ring.views(saved, count):
            if len(view):
                self._file.write(view)
        if self._left is not None:
            self._left -= count  # past the limit the frames are consumed unwritten
        self._native.store("saved", end)

    def _drain_loop(self) -> None:
        while not self._stop.wait(_WRITER_POLL):
            self._drain()

    def close(self) -> None:
        """Write what is left and close the file (after the callback stopped)."""
        self._stop.set()
        self._thread.join()
        self._drain()
        self._file.close()


class AudioPath:
    """Runs the C callback of `native` once per period from a device or the clock, with the file taps around it."""

    def __init__(self, settings: AudioSettings, native: CallbackState):
        self.settings = settings
        self._native = native
        if settings.input_file:
            native.set_file_input(FileInput(settings.input_file, settings.sample_rate, settings.channels).audio)
        self._recorder = (
            FileRecorder(settings.output_file, settings.sample_rate, settings.channels, native,
                         None if settings.record_seconds is None else round(settings.record_seconds * settings.sample_rate))
            if settings.output_file else None
        )
        self._stream = None
        self._jack = None  # our own JACK client, instead of a PortAudio stream, on JACK devices
        self._jack_device: str | None = None
        self._midi_sources: set[str] = set()  # JACK MIDI ports connected to our client's midi_in (connect_midi)
        self._midi_refused: set[str] = set()  # ... and those JACK refused, reported once
        self._clock = False
        self._names: tuple[str, str] | None = None  # "name, host API" of the open devices, to reopen them
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the stream: opened and closed by start/stop and the watcher
        self.description = "clock (no sound card)"
        self.state = "stopped"  # running | lost | reopening | stopped
        self.device_losses = 0
        self.device_reopens = 0
        self.on_state: Callable[[str, str], None] | None = None  # (state, description), from the watcher thread

    def health(self) -> dict:
        """audio_state, device_losses, device_reopens: for the server's status."""
        return {"audio_state": self.state, "device_losses": self.device_losses, "device_reopens": self.device_reopens}

    def start(self) -> None:
        if self.settings.use_device:
            self._open_device(self.settings.input_device, self.settings.output_device)
            self._watcher = threading.Thread(target=self._watch, name="ravelive-audio-watch", daemon=True)
            self._watcher.start()
        else:
            self._native.set_audio_priority(self.settings.audio_priority)
            self._native.start_clock(self.settings.period, self.settings.sample_rate)
            self._clock = True
        self.state = "running"

    def _open_device(self, input_device, output_device) -> None:
        sd = _portaudio()
        s = self.settings
        try:
            devices = [sd.query_devices(device, kind) for device, kind in ((input_device, "input"),
                                                                            (output_device, "output"))]
        except (sd.PortAudioError, ValueError) as error:
            raise AudioDeviceError(f"audio device {input_device or 'default'}/{output_device or 'default'}: "
                                   f"{one_line(error)}; check `ravelive devices` and pick one it lists") from error
        if _on_jack(sd, devices[1]):
            if devices[0]["name"] != devices[1]["name"]:
                raise AudioDeviceError(f"JACK: capture '{devices[0]['name']}' and playback '{devices[1]['name']}' "
                                       f"differ; give one JACK client (e.g. --device system)")
            self._open_jack(devices[1]["name"])
            return
        try:
            stream = sd._StreamBase(  # the base class takes a C callback pointer and userdata (as rtmixer does)
                kind="duplex", samplerate=s.sample_rate, blocksize=s.period, channels=s.channels, dtype="float32",
                device=(input_device, output_device), latency="low",
                callback=sd._ffi.cast("PaStreamCallback *", self._native.callback_address),
                userdata=sd._ffi.cast("void *", self._native.userdata_address),
            )
        except (sd.PortAudioError, ValueError) as error:
            raise AudioDeviceError(_device_refusal(input_device, output_device, s, error)) from error
        devices = [sd.query_devices(index) for index in stream.device]
        api = sd.query_hostapis(devices[1]["hostapi"])["name"]
        if api != JACK_API:  # PortAudio does not make its ALSA (or other) callback thread realtime itself
            self._native.set_audio_priority(s.audio_priority)
        try:
            stream.start()
        except sd.PortAudioError as error:
            stream.close()
            raise AudioDeviceError(f"audio device {devices[1]['name']} cannot start: {one_line(error)}; "
                                   f"check `ravelive devices`") from error
        self._stream = stream
        self._names = tuple(f"{device['name']}, {api}" for device in devices)
        self.description = f"{api}: in '{devices[0]['name']}', out '{devices[1]['name']}'"

    def _open_jack(self, device: str) -> None:
        """Our own JACK client (native/rtjack.c), connected to JACK client `device`: PortAudio's could not be
        reopened after the server stops (see rtjack.c)."""
        s = self.settings
        # PortAudio listed the devices through a JACK client of its own, active in every JACK cycle from then
        # on: an idle client that a busy machine can make late, which JACK reports as an xrun to everyone
        # (seen: "client = PortAudio was not finished"). Nothing here needs PortAudio once ours runs. It goes
        # first: closing a client reorders JACK's graph, and with ours already playing that stalled the worker's
        # first block by ~30 ms (a late block at every other start on a 2-core machine).
        sd = _sounddevice()
        while sd._initialized:
            sd._terminate()
        try:
            self._jack = self._native.open_jack("ravelive", device, s.period, s.sample_rate)
        except OSError as error:
            raise AudioDeviceError(_jack_refusal(device, s, str(error))) from error
        self._jack_device = device
        self._midi_sources.clear()  # a new client: nothing is connected to its midi_in yet
        self.description = f"{JACK_API}: in '{device}', out '{device}'"

    # -- MIDI straight into the callback's gain (engine/native/rtjack.c, control/midi/gain_table.py) ----------

    def use_midi_gain(self, cells: dict[tuple[int, int], tuple[float, ...]]) -> None:
        """The CCs our JACK client applies to the output gain itself (native.use_midi_gain)."""
        left_out = self._native.use_midi_gain(cells)
        if left_out:
            log.info("%d MIDI controls of gain/out are applied a cycle later: more curves than the table holds",
                     left_out)

    @property
    def midi_gain_events(self) -> int:
        """CCs our JACK client has applied to the output gain in the cycle they came."""
        return self._native.counter("midi_gain_events")

    def connect_midi(self, sources: list[str]) -> None:
        """Keep our JACK client's midi_in connected to exactly the JACK MIDI ports the control thread reads
        (present now): a port that went and came back is connected again, and so is a reopened client.
        No-op unless the audio runs on our JACK client."""
        with self._lock:
            if self._jack is None:
                return
            self._midi_sources &= set(sources)  # gone: JACK dropped the connection with the port
            for source in sources:
                if source in self._midi_sources:
                    continue
                try:
                    self._native.connect_jack_midi(self._jack, source)
                except OSError as error:
                    if source not in self._midi_refused:
                        self._midi_refused.add(source)
                        log.warning("%s; its CCs reach gain/out a JACK cycle later", error)
                    continue
                self._midi_sources.add(source)

    # -- device loss -----------------------------------------------------------------------

    def _watch(self) -> None:
        periods, still = self._native.counter("periods"), 0.0
        while not self._stop.wait(WATCH_SECONDS):
            now = self._native.counter("periods")
            still = still + WATCH_SECONDS if now == periods else 0.0
            periods = now
            with self._lock:
                if self._jack is not None:
                    active = self._native.jack_running(self._jack)
                else:
                    active = self._stream is not None and self._stream.active
            if active and still < STALL_SECONDS:
                continue
            if self._stop.is_set():
                return
            self._lost("the stream stopped" if not active else f"no periods for {STALL_SECONDS:.1f} s")
            self._reopen()
            periods, still = self._native.counter("periods"), 0.0

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.on_state is not None:
            try:
                self.on_state(state, self.description)
            except Exception:  # noqa: BLE001 - a failing hook must not stop the watcher
                log.exception("the audio state hook failed")

    def _lost(self, reason: str) -> None:
        self.device_losses += 1
        log.error("audio device lost (%s): %s; reopening it every %.1f s", self.description, reason, REOPEN_SECONDS)
        self._set_state("lost")
        with self._lock:
            stream, self._stream = self._stream, None
            jack, self._jack = self._jack, None
        if jack is not None:
            self._native.close_jack(jack)
            # PortAudio's own JACK client (it lists devices) died with the server too: its Pa_Terminate
            # would fail an assertion, so sounddevice's exit handler must not call it.
            _sounddevice()._initialized = 0
        if stream is not None and not _close_within(stream, CLOSE_SECONDS):
            log.warning("the lost stream does not close; leaving it open")

    def _reopen(self) -> None:
        sd = _sounddevice()
        self._set_state("reopening")
        failures = 0
        while not self._stop.wait(REOPEN_SECONDS):
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    if self._jack_device is not None:  # PortAudio's JACK API is dead: ours only
                        self._open_jack(self._jack_device)
                    else:
                        sd._terminate()  # PortAudio lists devices (a device plugged back) only when initialised
                        sd._initialize()
                        self._open_device(*self._names)
            except (AudioDeviceError, sd.PortAudioError) as error:
                failures += 1
                if failures == 1:
                    log.info("audio device not back yet: %s", error)
                continue
            self.device_reopens += 1
            log.warning("audio device reopened (%s); the latency is unchanged", self.description)
            self._set_state("running")
            return

    def stop(self) -> None:
        """Stop the audio and close the files; safe to call twice."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        with self._lock:
            stream, self._stream = self._stream, None
            jack, self._jack = self._jack, None
        if jack is not None:
            self._native.close_jack(jack)
        if stream is not None and not _close_within(stream, CLOSE_SECONDS):
            log.warning("the audio stream did not close within %.1f s; left open", CLOSE_SECONDS)
        if self._clock:
            self._native.stop_clock()
            self._clock = False
        if self._recorder is not None:
            self._recorder.close()
            if self._recorder.lost_frames:
                log.warning("the recording lost %d frames: the disk was too slow", self._recorder.lost_frames)
            self._recorder = None
        self.state = "stopped"


def _close_within(stream, seconds: float) -> bool:
    """Stop and close `stream` on a helper thread; False when that takes longer than `seconds`."""

    def close() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as error:  # noqa: BLE001 - a vanished device may fail to close; it is gone either way
            log.debug("closing the audio stream: %s", error)

    closer = threading.Thread(target=close, name="ravelive-audio-close", daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()

