"""MIDI ports through python-rtmidi: opened by name pattern, polled for hot-plug, bytes queued untouched.

Ports are found by a case-insensitive substring of their name, because port
numbers change as devices come and go. rtmidi has no hot-plug events, so
`poll()` (called by the control thread every half second) lists the ports,
opens every new match, and notices vanished ones: each is reported once,
when it goes and when it comes back.

`read()` hands the bytes to the control thread, in one of two ways:
- ALSA, CoreMIDI, WinMM: rtmidi calls a callback from its own input thread;
  the callback only puts `(bytes, port, time)` on a queue the control thread
  blocks on (no CPU while idle, no added latency). When the queue is full
  the message is dropped and counted (`dropped`).
- JACK: no Python callback at all. rtmidi calls it from JACK's realtime
  process thread, where python-rtmidi must take the GIL: measured on a
  jackd dummy server with a busy Python thread, a callback lost 1,800 of
  11,300 messages and duplicated others, and it stalls the JACK graph that
  the audio runs in. rtmidi's C++ queue holds the bytes instead and the
  control thread reads them with `get_message()`: every millisecond for a
  second after a message, every `IDLE_POLL_SECONDS` otherwise (less than a
  JACK period of 256 frames, which is how often JACK delivers MIDI); that
  lost none of the 11,300.
mido's rtmidi backend always installs a callback and drops what it cannot
parse without a count, so the ports are python-rtmidi's own.

Outputs are written from two threads (feedback, and the control thread
showing a newly connected box every value); one lock keeps rtmidi's
single-writer output buffer whole and ports from closing under a send.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import rtmidi

from ravelive.errors import ConfigError

logger = logging.getLogger(__name__)

CLIENT_NAME = "ravelive-midi"  # our own ports start with this; patterns never match them (JACK lists them too)
OWN_PREFIXES = (CLIENT_NAME, "ravelive:")  # ... nor the audio's JACK client's (audio.py), whose midi_in is an input
ACTIVE_POLL_SECONDS = 0.001  # JACK: how often inputs are read while a control moves
ACTIVE_SECONDS = 1.0  # ... for this long after the last message
IDLE_POLL_SECONDS = 0.004  # ... and then. Idle MIDI on JACK, test machine: 5% of a core polling every 1 ms,
# 2.7% every 4 ms (most of that is the JACK clients' own threads: every rtmidi port is a JACK client)
APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK, "coremidi": rtmidi.API_MACOSX_CORE,
        "winmm": rtmidi.API_WINDOWS_MM}


def resolve_api(name: str | None) -> int:
    """The rtmidi API for --midi-api NAME (None: the platform's); ConfigError when it is not compiled in."""
    if name is None:
        return rtmidi.API_UNSPECIFIED
    if name not in APIS:
        raise ConfigError(f"--midi-api {name!r} is not one of {', '.join(APIS)}")
    if APIS[name] not in rtmidi.get_compiled_api():
        compiled = ", ".join(rtmidi.get_api_name(api) for api in rtmidi.get_compiled_api()) or "none"
        raise ConfigError(f"--midi-api {name}: this python-rtmidi was built without it (it has: {compiled})")
    return APIS[name]


@dataclass
class _Opened:
    port: rtmidi.MidiIn | rtmidi.MidiOut
    name: str  # the full name of the port it is connected to ("" for a virtual port)
    present: bool = True


@dataclass
class MidiPorts:
    """The inputs and feedback outputs of one server, kept connected by polling."""

    api: int
    inputs: Sequence[str]  # name patterns
    outputs: Sequence[str]
    virtual: str | None
    queue_limit: int  # messages rtmidi holds per input until the control thread reads them
    report: Callable[[str], None]  # one line for the log / the start-up report
    _opened_in: dict[str, _Opened] = field(default_factory=dict)  # by port name
    _opened_out: dict[str, _Opened] = field(default_factory=dict)
    _missing: set[str] = field(default_factory=set)  # patterns reported as missing, until they are found
    _probe_in: rtmidi.MidiIn | None = None
    _probe_out: rtmidi.MidiOut | None = None
    _output_lock: threading.Lock = field(default_factory=threading.Lock)
    callbacks: bool | None = None  # None: callbacks unless the backend is JACK (see the module docstring)
    dropped: int = 0  # callback mode: messages dropped because the control thread's queue was full
    _chunks: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _last_message: float = 0.0

    def open(self) -> None:
        """Reach the backend and open what is there now; ConfigError (one line) when the backend is missing."""
        try:
            self._probe_in = rtmidi.MidiIn(self.api, CLIENT_NAME)
            self._probe_out = rtmidi.MidiOut(self.api, CLIENT_NAME)
            if self.callbacks is None:
                self.callbacks = self._probe_in.get_current_api() != rtmidi.API_UNIX_JACK
            if self.virtual:
                port = self._new_input()
                port.open_virtual_port(self.virtual)
                self._deliver(port, "")
                self._opened_in[""] = _Opened(port, "")
                self.report(f"MIDI virtual input {self.virtual!r} is open")
        except (rtmidi.SystemError, rtmidi.RtMidiError, NotImplementedError) as error:
            self.close()
            api = rtmidi.get_api_display_name(self.api) if self.api != rtmidi.API_UNSPECIFIED else "the platform's"
            raise ConfigError(f"MIDI backend ({api}) cannot be used ({error}); no ALSA sequencer or JACK server? "
                              "The server runs without MIDI") from error
        self.poll()

    def poll(self) -> bool:
        """Open new ports that match, notice vanished ones (each reported once); True if an output (re)connected."""
        if self._probe_in is None:
            return False
        self._follow(self._probe_in.get_ports(), self.inputs, self._opened_in, self._open_input, "input")
        with self._output_lock:
            before = len([o for o in self._opened_out.values() if o.present])
            self._follow(self._probe_out.get_ports(), self.outputs, self._opened_out, self._open_output, "output")
            return len([o for o in self._opened_out.values() if o.present]) > before

    def read(self, handle: Callable[[list[int], str, float], None], limit: int, timeout: float) -> int:
        """Hand waiting messages (up to `limit` a port) to `handle(bytes, port, time)`, waiting up to `timeout`
        for the first; returns how many."""
        if self.callbacks:
            return self._read_queue(handle, limit, timeout)
        count = 0
        for opened in list(self._opened_in.values()):
            for _ in range(limit):
                event = opened.port.get_message()
                if event is None:
                    break
                handle(event[0], opened.name, time.monotonic())
                count += 1
        now = time.monotonic()
        if count:
            self._last_message = now
        else:
            active = now - self._last_message < ACTIVE_SECONDS
            time.sleep(min(timeout, ACTIVE_POLL_SECONDS if active else IDLE_POLL_SECONDS))
        return count

    def _read_queue(self, handle: Callable[[list[int], str, float], None], limit: int, timeout: float) -> int:
        try:
            chunk = self._chunks.get(timeout=timeout)
        except queue.Empty:
            return 0
        count = 0
        while True:
            handle(*chunk)
            count += 1
            if count >= limit:
                return count
            try:
                chunk = self._chunks.get_nowait()
            except queue.Empty:
                return count

    def send(self, message: list[int]) -> int:
        """Send one message to every connected output; returns how many failed."""
        failed = 0
        with self._output_lock:
            for opened in self._opened_out.values():
                if opened.present:
                    try:
                        opened.port.send_message(message)
                    except (rtmidi.RtMidiError, ValueError):
                        failed += 1
        return failed

    def jack_sources(self) -> list[str]:
        """The JACK MIDI ports the inputs are connected to now (none off JACK; a virtual input has none)."""
        if self._probe_in is None or self._probe_in.get_current_api() != rtmidi.API_UNIX_JACK:
            return []
        return [o.name for o in list(self._opened_in.values()) if o.present and o.name]

    @property
    def has_outputs(self) -> bool:
        return any(o.present for o in self._opened_out.values())

    def describe(self) -> str:
        """The connected ports, for status: 'in: ctl:knobs; out: ctl:leds'."""
        inputs = [o.name or "(virtual)" for o in list(self._opened_in.values()) if o.present]
        outputs = [o.name for o in list(self._opened_out.values()) if o.present]
        return f"in: {', '.join(inputs) or 'none'}; out: {', '.join(outputs) or 'none'}"

    def close(self) -> None:
        with self._output_lock:
            for opened in [*self._opened_in.values(), *self._opened_out.values()]:
                try:
                    opened.port.close_port()
                    opened.port.delete()
                except (rtmidi.RtMidiError, AttributeError):
                    pass
            self._opened_in.clear()
            self._opened_out.clear()
        for probe in (self._probe_in, self._probe_out):
            if probe is not None:
                probe.delete()
        self._probe_in = self._probe_out = None

    # ---- inside --------------------------------------------------------------------------

    def _follow(self, listed: list[str], patterns: Sequence[str], opened: dict[str, _Opened],
                open_one: Callable[[int, str], None], kind: str) -> None:
        names = [name for name in listed if not name.startswith(OWN_PREFIXES)]
        for name, entry in opened.items():
            if entry.name and entry.present and name not in names:
                entry.present = False
                self.report(f"MIDI {kind} {name!r} vanished; reconnecting when it comes back")
        for pattern in patterns:
            matches = [(index, name) for index, name in enumerate(listed) if pattern.lower() in name.lower()
                       and not name.startswith(OWN_PREFIXES)]
            if not matches:
                if pattern not in self._missing and not any(pattern.lower() in n.lower() for n in opened):
                    self._missing.add(pattern)
                    self.report(f"MIDI {kind} {pattern!r} not found (ports: {', '.join(names) or 'none'}); "
                                "waiting for it")
                continue
            self._missing.discard(pattern)
            for index, name in matches:
                entry = opened.get(name)
                if entry is None or not entry.present:
                    self._reopen(opened, name, index, open_one, kind, again=entry is not None)

    def _reopen(self, opened: dict[str, _Opened], name: str, index: int, open_one: Callable[[int, str], None],
                kind: str, again: bool) -> None:
        old = opened.pop(name, None)
        if old is not None:
            old.port.close_port()
            old.port.delete()
        try:
            open_one(index, name)
        except (rtmidi.RtMidiError, rtmidi.SystemError) as error:
            self.report(f"MIDI {kind} {name!r} cannot be opened ({error}); trying again")
            return
        self.report(f"MIDI {kind} {name!r} {'reconnected' if again else 'connected'}")

    def _new_input(self) -> rtmidi.MidiIn:
        port = rtmidi.MidiIn(self.api, CLIENT_NAME, queue_size_limit=self.queue_limit)
        port.ignore_types(sysex=False, timing=True, active_sense=True)  # SysEx comes through to be counted
        return port

    def _open_input(self, index: int, name: str) -> None:
        port = self._new_input()
        port.open_port(index, "in")
        self._deliver(port, name)
        self._opened_in[name] = _Opened(port, name)

    def _deliver(self, port: rtmidi.MidiIn, name: str) -> None:
        """Callback mode: rtmidi's input thread queues each message for the control thread, nothing more."""
        if not self.callbacks:
            return
        chunks, limit = self._chunks, self.queue_limit

        def received(event: tuple[list[int], float], data: object = None) -> None:
            if chunks.qsize() < limit:
                chunks.put((event[0], name, time.monotonic()))
            else:
                self.dropped += 1

        port.set_callback(received)

    def _open_output(self, index: int, name: str) -> None:
        port = rtmidi.MidiOut(self.api, CLIENT_NAME)
        port.open_port(index, "out")
        self._opened_out[name] = _Opened(port, name)


def list_ports(api_name: str | None) -> tuple[list[str], list[str]]:
    """The input and output port names another program offers; ConfigError when the backend is missing."""
    api = resolve_api(api_name)
    try:
        probe_in, probe_out = rtmidi.MidiIn(api, CLIENT_NAME), rtmidi.MidiOut(api, CLIENT_NAME)
    except (rtmidi.SystemError, rtmidi.RtMidiError) as error:
        raise ConfigError(f"MIDI backend cannot be used ({error}); no ALSA sequencer or JACK server?") from error
    try:
        inputs = [name for name in probe_in.get_ports() if not name.startswith(OWN_PREFIXES)]
        return inputs, [name for name in probe_out.get_ports() if not name.startswith(OWN_PREFIXES)]
    finally:
        probe_in.delete()
        probe_out.delete()
