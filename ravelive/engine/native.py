"""The C audio callback (native/rtcallback.c): finding its library, and the state it shares with Python.

Why C: anything that holds the GIL (torch.jit.load during a hot swap, a GC pass, an OSC burst) would stall
a Python callback, so the device would underrun and the dry fallback could not play. The callback copies
rings, plays the fallback, counts and wakes the worker without Python; the worker and the model stay in
Python. rtmixer (the maintained C-callback library for sounddevice) cannot do this job: its ring-buffer
playback plays whatever the ring holds and moves on, so a late block shifts every later sample (our
output sample j must play at exactly j + latency), it has no fallback or fades, and it printf()s in
the callback.

The library is plain C (no Python.h, no PortAudio link) loaded with cffi in ABI mode. Prebuilt copies
for linux-x86_64 and linux-aarch64 ship in the package (tools/build_native.py), so a Raspberry Pi needs
no compiler; each embeds the hash of the source it was built from, and one that does not match the
source next to it is not used. Elsewhere (or when stale) the source is compiled with `cc` into
~/.cache/ravelive/native/<hash>/.
"""

import hashlib
import os
import platform
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import cffi

from ravelive.dsp import dc_blocker, limiter
from ravelive.errors import ConfigError, one_line

NATIVE_DIR = Path(__file__).with_name("native")
SOURCES = tuple(NATIVE_DIR / name for name in ("rtcallback.c", "rtjack.c", "rtlimiter.c", "rtdcblock.c"))
HEADER = NATIVE_DIR / "rtcallback.h"
HASH_MARK = b"RAVELIVE_RT_SOURCE="
CFLAGS = ("-std=c11", "-O2", "-fPIC", "-shared", "-pthread", "-Wall", "-Wextra", "-Werror")
_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

_lock = threading.Lock()
_loaded: tuple[cffi.FFI, object] | None = None


def source_hash() -> str:
    """sha256 of the callback's C source and header: what a library must have been built from."""
    digest = hashlib.sha256()
    for path in (HEADER, *SOURCES):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def declarations() -> str:
    """The header's cdef section, as cffi reads it (cffi has no _Atomic; the layout is the same)."""
    text = HEADER.read_text()
    begin, end = text.index("/* cdef begin */"), text.index("/* cdef end */")
    return text[begin + len("/* cdef begin */") : end].replace("_Atomic ", "")


def embedded_hash(library: Path) -> str | None:
    """The source hash a library file was built with (found in its bytes: works for any architecture)."""
    data = library.read_bytes()
    at = data.find(HASH_MARK)
    if at < 0:
        return None
    return data[at + len(HASH_MARK) : at + len(HASH_MARK) + 64].decode("ascii", "replace")


def prebuilt_path(architecture: str) -> Path:
    return NATIVE_DIR / f"librtcallback-linux-{architecture}.so"


def build(output: Path, compiler: str = "cc") -> None:
    """Compile the callback into `output` with `compiler`, the source hash embedded."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + f".{os.getpid()}.tmp")
    command = [compiler, *CFLAGS, f'-DRL_SOURCE_HASH="{source_hash()}"', "-o", str(partial), *map(str, SOURCES)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"compiling the audio callback with {compiler} failed: {one_line(result.stderr)[-500:]}")
    partial.replace(output)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "ravelive" / "native"


def library_path() -> Path:
    """The prebuilt library for this machine when it matches the source, else one compiled into the cache."""
    wanted = source_hash()
    architecture = _ARCHITECTURES.get(platform.machine().lower())
    if platform.system() == "Linux" and architecture is not None:
        prebuilt = prebuilt_path(architecture)
        if prebuilt.exists() and embedded_hash(prebuilt) == wanted:
            return prebuilt
    cached = _cache_dir() / wanted / "librtcallback.so"
    if cached.exists():
        return cached
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ConfigError(
            f"ravelive ships no audio-callback library for {platform.system()} {platform.machine()} and no C "
            f"compiler was found to build it; install one (Debian: apt-get install gcc) and start again"
        )
    build(cached, compiler)
    return cached


def load() -> tuple[cffi.FFI, object]:
    """(ffi, lib) of the callback library, loaded once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            ffi = cffi.FFI()
            ffi.cdef(declarations())
            path = library_path()
            try:
                lib = ffi.dlopen(str(path))
            except OSError as error:
                raise ConfigError(f"{path}: cannot be loaded ({one_line(error)}); delete it and start again, "
                                  f"or install a C compiler (Debian: apt-get install gcc)") from error
            if lib.rl_state_size() != ffi.sizeof("struct rl_state"):
                raise ConfigError(f"{path}: its state layout differs from {HEADER.name}; rebuild it with "
                                  f"tools/build_native.py")
            _loaded = ffi, lib
        return _loaded


def jack_period() -> int:
    """The running JACK server's frames per period; OSError (its one-line reason) when none runs."""
    ffi, lib = load()
    error = ffi.new("char[]", 256)
    period = lib.rl_jack_period(error, 256)
    if period < 0:
        raise OSError(ffi.string(error).decode(errors="replace"))
    return period


FALLBACK_CODES = {"dry": 0, "silence": 1}
RT_OUTCOMES = {0: "no period yet", 1: "raised to SCHED_FIFO", 2: "realtime already", 3: "not asked"}
XRUN_STATUS = 0x4  # paOutputUnderflow: what the test hook passes for `xrun`
_GAIN_ONE = 1 << 30  # rl_state.gain of exactly 1.0 (GAIN_ONE in rtcallback.c)


class CallbackState:
    """One C callback's shared state (`struct rl_state`) and the storage its pointers refer to.

    The rings are `ravelive.dsp.fifo.Ring`s: the C code reads and writes their numpy storage directly.
    Positions go through `load` / `store` (sequentially consistent atomics in C, so ring contents written
    before a position is published are seen by whoever reads that position); counters are plain reads.
    """

    def __init__(self, input_ring, output_ring, fade_in, fallback: str, startup: int, wake_fd: int,
                 max_frames: int, gain_ramp: int = 1, audio_channels: int | None = None,
                 safety_rate: int | None = None):
        self.ffi, self.lib = load()
        self.channels = input_ring.channels
        self._keep = [input_ring.data, output_ring.data, fade_in]  # the C pointers refer to these
        self._last = self._array(self.channels)
        self._clock_output = self._array(max_frames * self.channels)
        s = self._state = self.ffi.new("struct rl_state *")
        s.channels, s.ring_frames, s.max_frames = self.channels, input_ring.frames, max_frames
        s.fade, s.startup, s.fallback, s.wake_fd = len(fade_in), startup, FALLBACK_CODES[fallback], wake_fd
        s.last_late_block = -1  # no block counted late yet: block 0 (the stream's first) can be
        s.gain, s.gain_target, s.gain_now, s.gain_ramp = _GAIN_ONE, _GAIN_ONE, 1.0, gain_ramp
        s.audio_channels = self.channels if audio_channels is None else audio_channels  # not the CV jacks above them
        if safety_rate is not None:  # the DC blocker before the gain and the true-peak limiter after it, at this rate
            s.safety = 1
            self._keep += dc_blocker.configure(self.ffi.addressof(s, "dc_blocker"), self.ffi, self.channels,
                                               s.audio_channels, safety_rate)
            self._keep += limiter.configure(self.ffi.addressof(s, "limiter"), self.ffi, self.channels,
                                            s.audio_channels, safety_rate)
        s.input, s.output = self._pointer(input_ring.data), self._pointer(output_ring.data)
        s.fade_in, s.last, s.clock_output = self._pointer(fade_in), self._pointer(self._last), self._pointer(
            self._clock_output)
        self._midi_gain_table = None  # the table the JACK client reads (use_midi_gain) ...
        self._retired_gain_tables: list[tuple[object, int]] = []  # ... and those replaced, with the period count then
        self._positions = {name: self.ffi.addressof(s, name) for name in
                           ("latency", "block", "played", "wake_at", "ready", "recorded", "saved", "gain")}

    def _array(self, n: int):
        import numpy as np

        array = np.empty(n, dtype=np.float32)
        array.fill(0.0)  # written, so resident before the callback first touches it (see Ring)
        self._keep.append(array)
        return array

    def _pointer(self, array):
        if not array.flags.c_contiguous or array.dtype.itemsize != 4:
            raise ValueError("the C callback needs C-contiguous float32 storage")
        return self.ffi.cast("float *", self.ffi.from_buffer(array))

    # -- shared values ---------------------------------------------------------------------

    def load(self, name: str) -> int:
        return self.lib.rl_load(self._positions[name])

    def store(self, name: str, value: int) -> None:
        self.lib.rl_store(self._positions[name], value)

    def set_gain(self, gain: float) -> None:
        """The output gain (linear, at least 0), from the next period played, ramped; the limiter follows it."""
        self.store("gain", round(max(0.0, gain) * _GAIN_ONE))

    @property
    def limiter_gain(self) -> float:
        """The limiter's gain on the last frame played (1.0: not limiting, or no limiter)."""
        return self._state.limiter.gain if self._state.safety else 1.0

    def counter(self, name: str) -> int:
        return getattr(self._state, name)

    @property
    def audio_thread(self) -> int:
        """Kernel thread id of the thread that ran the first period (0 before it)."""
        return self._state.audio_thread

    @property
    def scheduling(self) -> tuple[int, int]:
        """(rt_result, priority the audio thread runs at); rt_result 0 until the first period ran."""
        return self._state.rt_result, self._state.rt_priority_now

    def store_wake_fd(self, fd: int) -> None:
        """Where the callback writes its wake-up byte (-1: nowhere, once the pipe is closed)."""
        self._state.wake_fd = fd

    def set_audio_priority(self, priority: int) -> None:
        """Before the first period: raise the audio thread to SCHED_FIFO `priority` unless it is realtime (0: no)."""
        self._state.rt_priority = priority

    def set_file_input(self, audio) -> None:
        """Before the first period: play `audio` [frames, ch] (float32, C-contiguous) in a loop as the input."""
        self._keep.append(audio)
        self._state.file, self._state.file_frames, self._state.file_position = self._pointer(audio), len(audio), 0

    def set_recorder(self, ring) -> None:
        """Before the first period: copy what is played into `ring` (positions `recorded`, `saved`)."""
        self._keep.append(ring.data)
        self._state.record, self._state.record_frames = self._pointer(ring.data), ring.frames

    # -- running it ------------------------------------------------------------------------

    @property
    def callback_address(self) -> int:
        """Address of rl_callback (a PaStreamCallback) for a PortAudio stream."""
        return int(self.ffi.cast("uintptr_t", self.lib.rl_callback))

    @property
    def userdata_address(self) -> int:
        """Address of the state: the callback's userdata."""
        return int(self.ffi.cast("uintptr_t", self._state))

    def run_period(self, indata, outdata, xrun: bool = False) -> None:
        """Run one period on the calling thread (tests, benchmarks): `indata` [n, ch] or None, `outdata` [n, ch]."""
        for array in (indata, outdata):
            if array is not None and (array.ndim != 2 or array.shape[1] != self.channels or array.dtype.itemsize != 4
                                      or not array.flags.c_contiguous):
                raise ValueError(f"a period is C-contiguous float32 [frames, {self.channels}], got {array.shape}")
        if indata is not None and len(indata) != len(outdata):
            raise ValueError(f"{len(indata)} input frames for {len(outdata)} output frames")
        captured = self.ffi.NULL if indata is None else self.ffi.from_buffer(indata)
        self.lib.rl_callback(captured, self.ffi.from_buffer(outdata), len(outdata), self.ffi.NULL,
                             XRUN_STATUS if xrun else 0, self._state)

    def start_clock(self, period: int, sample_rate: int) -> None:
        """Run the callback from a C thread, one period per period of real time (headless mode)."""
        error = self.lib.rl_clock_start(self._state, period, sample_rate)
        if error:
            raise OSError(error, os.strerror(error))

    def stop_clock(self) -> None:
        """Stop the clock thread and wait for it; no-op when it does not run."""
        self.lib.rl_clock_stop(self._state)

    def open_jack(self, client_name: str, device: str, period: int, sample_rate: int):
        """Run the callback from a JACK client of our own, connected to JACK client `device`; OSError if refused."""
        error = self.ffi.new("char[]", 256)
        jack = self.lib.rl_jack_open(self._state, client_name.encode(), device.encode(), period, sample_rate, error, 256)
        if jack == self.ffi.NULL:
            raise OSError(self.ffi.string(error).decode(errors="replace"))
        return jack

    def use_midi_gain(self, cells: Mapping[tuple[int, int], Sequence[float]]) -> int:
        """Our JACK client sets the output gain itself from these CCs, in the cycle they come (rtjack.c):
        (channel 0-15, CC number) -> the linear gain at each CC value 0..127 (control/midi/gain_table.py).
        Returns how many cells did not fit: they have more distinct curves than the table's rows."""
        table = self.ffi.new("struct rl_midi_gain *")
        rows: dict[tuple[float, ...], int] = {}
        for channel in range(16):
            for number in range(128):
                table.row[channel][number] = -1
        left_out = 0
        for (channel, number), gains in cells.items():
            row = rows.setdefault(tuple(gains), len(rows))
            if row >= len(table.gain):
                left_out += 1
                continue
            table.row[channel][number] = row
            for value, gain in enumerate(gains):
                table.gain[row][value] = round(max(0.0, gain) * _GAIN_ONE)
        # A period may still read the table it replaces: that one is freed once two more periods have run.
        periods = self.counter("periods")
        self._retired_gain_tables = [(old, at) for old, at in self._retired_gain_tables if periods - at < 2]
        if self._midi_gain_table is not None:
            self._retired_gain_tables.append((self._midi_gain_table, periods))
        self._midi_gain_table = table
        self.lib.rl_use_midi_gain(self._state, table)
        return left_out

    def connect_jack_midi(self, jack, source: str) -> None:
        """Connect JACK MIDI port `source` to our JACK client's midi_in (registered on the first call); OSError
        if JACK refuses."""
        error = self.ffi.new("char[]", 256)
        if self.lib.rl_jack_connect_midi(jack, source.encode(), error, 256) != 0:
            raise OSError(self.ffi.string(error).decode(errors="replace"))

    def jack_running(self, jack) -> bool:
        """False once the JACK server has shut the client down."""
        return bool(self.lib.rl_jack_running(jack))

    def close_jack(self, jack) -> None:
        self.lib.rl_jack_close(jack)
