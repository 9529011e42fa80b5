"""MIDI beside the server: ports, the control thread that decodes and writes the store, learn and feedback.

`MidiService.start(store, config, recall=...)` reads the mapping file (a bad
one raises MappingFileError: the server refuses to start), opens the ports
(a missing backend is one line, and the server runs without MIDI), and
starts one control thread. That thread reads the bytes rtmidi queued
(control/midi/ports.py says why there is no callback), splits and decodes
them (control/midi/decode.py), turns events into values
(control/midi/binding.py) and writes them to the ParameterStore with the
control as `source`; it also polls the ports for hot-plug and finishes MIDI
learn. Nothing here runs on the audio path. Every fault is counted by
kind; `status()` gives the counters for `/ravelive/status`.

On JACK, `attach_audio(server.audio)` also hands the audio's own JACK
client the `gain/out` bindings as a lookup table and the ports to listen
to (control/midi/gain_table.py says why): the fader is heard in the cycle
its CC arrives, not one later.
"""

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ravelive.control.midi.binding import Binding
from ravelive.control.midi.decode import Decoder, Source, Tokenizer
from ravelive.control.midi.feedback import MidiFeedback
from ravelive.control.midi.gain_table import gain_cells
from ravelive.control.midi.learn import Learner, learnable, write_bindings
from ravelive.control.midi.mapping import ControlMapping, MidiMap, load_map
from ravelive.control.midi.ports import MidiPorts, resolve_api
from ravelive.control.params import ParameterStore
from ravelive.control.presets import PresetLibrary
from ravelive.errors import ConfigError, ParameterError, RaveliveError

logger = logging.getLogger(__name__)

FAULT_KINDS = ("truncated", "stray_data", "unknown_status", "sysex", "refused_value",
               "missing_target", "preset_recall", "send_failed", "internal")
_DRAIN = 256  # messages read per input between two looks at the clock (polling, learn deadlines)
_LEARN_TICK = 0.05  # while learning, the clock is looked at this often (a learn window is 0.3 s)


@dataclass(frozen=True)
class MidiConfig:
    """`serve`'s MIDI options."""

    inputs: tuple[str, ...] = ()  # --midi-in: case-insensitive substrings of port names
    virtual: str | None = None  # --midi-virtual: a virtual input port of this name
    outputs: tuple[str, ...] = ()  # --midi-out: feedback to these ports
    api: str | None = None  # --midi-api alsa|jack|coremidi|winmm; None: the platform's
    map_file: Path | None = None  # --midi-map; learn writes here (created if missing)
    learn: str | None = None  # --learn PARAM: armed at start
    poll_seconds: float = 0.5  # hot-plug: ports listed this often (a replugged controller is back within 2 s)
    queue_limit: int = 16384  # messages waiting for the control thread, per input (a SysEx flood fits)
    feedback_rate: float = 200.0  # feedback rounds per second at most (motor faders move smoothly at 100)


class DirectGain(Protocol):
    """What the audio offers MIDI: CCs it applies to the output gain itself (audio.AudioPath)."""

    def use_midi_gain(self, cells: dict[tuple[int, int], tuple[float, ...]]) -> None: ...

    def connect_midi(self, sources: list[str]) -> None: ...

    @property
    def midi_gain_events(self) -> int: ...


class MidiService:
    """The MIDI side of one server; see the module docstring."""

    def __init__(self, store: ParameterStore, config: MidiConfig, midi_map: MidiMap,
                 recall: Callable[[int], object] | None, report: Callable[[str], None]) -> None:
        self.store = store
        self.config = config
        self.report = report
        self.faults: collections.Counter[str] = collections.Counter({kind: 0 for kind in FAULT_KINDS})
        self.messages = 0  # channel messages decoded
        self.writes = 0  # store writes made
        # announce(address, *arguments): tell OSC subscribers (run() sets it to the OSC server's announce)
        self.announce: Callable[..., None] | None = None
        self._recall = recall
        self._map = midi_map
        self._specs = store.specs
        self._bindings: list[Binding] = []
        self._decoders: dict[str, tuple[Tokenizer, Decoder]] = {}
        self._learning: tuple[Learner, Callable[[str | None], None]] | None = None
        self._lock = threading.Lock()  # map, bindings and learner: written by OSC, read by the control thread
        self._ports: MidiPorts | None = None
        self._audio: DirectGain | None = None
        self.feedback = MidiFeedback(self._send, self.faults, config.feedback_rate)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ravelive-midi", daemon=True)
        self._install(midi_map)

    @classmethod
    def start(cls, store: ParameterStore, config: MidiConfig, recall: Callable[[int], object] | None = None,
              report: Callable[[str], None] = logger.warning) -> "MidiService":
        """Read the map (MappingFileError: refuse to start), open the ports, start the control thread."""
        midi_map = MidiMap(path=config.map_file)
        if config.map_file is not None:
            if Path(config.map_file).exists():
                midi_map = load_map(config.map_file, store.specs)
            else:
                report(f"MIDI map {config.map_file} does not exist yet: learned bindings will be written there")
        service = cls(store, config, midi_map, recall, report)
        ports = MidiPorts(resolve_api(config.api), config.inputs, config.outputs, config.virtual,
                          config.queue_limit, report)
        try:
            ports.open()
            service._ports = ports
        except ConfigError as error:
            report(str(error))
        store.add_listener(service.feedback.on_change)
        service.feedback.start()
        if service._ports is not None:
            service.feedback.show(service._bindings, store.values())
        service._thread.start()
        if config.learn is not None:
            try:
                service.learn(config.learn, lambda error: report(error or f"MIDI learn: {config.learn} is bound"))
            except RaveliveError:  # --learn names no parameter: refuse to start, as a bad map does
                service.close()
                raise
        return service

    # ---- what OSC and the server use -----------------------------------------------------------

    def attach_audio(self, audio: DirectGain) -> None:
        """Hand `audio` the gain/out bindings and, on JACK, the ports read (again at each map change and poll)."""
        with self._lock:
            self._audio = audio
            audio.use_midi_gain(gain_cells(self._bindings, self._map))
        if self._ports is not None:
            audio.connect_midi(self._ports.jack_sources())

    def learn(self, name: str, done: Callable[[str | None], None]) -> None:
        """Bind the next control moved to `name`; done(None) once bound, done(reason) if replaced or refused."""
        spec = self.store.spec(name)  # ParameterError for an unknown name
        refusal = learnable(spec)
        if refusal is not None:
            raise ParameterError(refusal)
        if self._ports is None:
            raise ConfigError("MIDI learn: no MIDI ports are open (see the start-up report)")
        with self._lock:
            previous, self._learning = self._learning, (Learner(spec), done)
        if previous is not None:
            previous[1](f"MIDI learn of {previous[0].spec.name} replaced by {name}")

    def forget(self, name: str) -> int:
        """Remove every binding of parameter `name`; returns how many there were."""
        self.store.spec(name)
        with self._lock:
            kept = tuple(m for m in self._map.mappings if m.target != name)
            removed = len(self._map.mappings) - len(kept)
            self._save(name, [])
            self._install(MidiMap(kept, self._map.program_channel, self._map.path))
        if self.announce is not None:
            self.announce("midi/forgot", name, removed)
        return removed

    def bindings(self) -> list[tuple[str, str]]:
        """(parameter, control) of every binding, in file order."""
        return [(m.target, m.describe()) for m in self._map.mappings]

    def reload(self) -> None:
        """Read the mapping file again; on a fault keep the current map and raise MappingFileError."""
        if self.config.map_file is None:
            raise ConfigError("MIDI reload: no mapping file; start the server with --midi-map FILE")
        midi_map = load_map(self.config.map_file, self.store.specs)
        with self._lock:
            self._install(midi_map)

    def status(self) -> dict[str, Any]:
        """Counters for the server's status: midi_faults, and per kind under midi/."""
        ports = self._ports.describe() if self._ports is not None else "no MIDI backend"
        faults = dict(self.faults)
        faults["queue_full"] = self._ports.dropped if self._ports is not None else 0
        return {"midi_faults": sum(faults.values()),
                "midi": {"ports": ports, "messages": self.messages, "writes": self.writes,
                         "bindings": len(self._bindings),
                         "gain_in_cycle": self._audio.midi_gain_events if self._audio is not None else 0, **faults}}

    def describe(self) -> str:
        """One line for the start-up report."""
        if self._ports is None:
            return "MIDI off (no backend)"
        source = f" from {self._map.path}" if self._map.path is not None else ""
        return f"MIDI {self._ports.describe()}; {len(self._map.mappings)} bindings{source}"

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.feedback.close()
        try:
            self.store.remove_listener(self.feedback.on_change)
        except ValueError:
            pass
        if self._ports is not None:
            self._ports.close()

    # ---- the control thread ------------------------------------------------------------------

    def _loop(self) -> None:
        next_poll = time.monotonic() + self.config.poll_seconds
        while not self._stopping.is_set():
            try:
                # wake for the next port poll, and often enough to end a learn window on time
                timeout = max(0.0, min(next_poll - time.monotonic(), _LEARN_TICK if self._learning else 1.0))
                if self._ports is None:
                    self._stopping.wait(timeout)
                else:
                    self._ports.read(self._handle, _DRAIN, timeout)
                now = time.monotonic()
                if now >= next_poll and self._ports is not None:
                    if self._ports.poll():  # a fader box plugged in: show it every value
                        self.feedback.show(self._bindings, self.store.values())
                    if self._audio is not None:
                        self._audio.connect_midi(self._ports.jack_sources())
                    next_poll = now + self.config.poll_seconds
                self._finish_learning(now, None)
            except Exception:  # the boundary: no byte a controller sends may stop MIDI
                self.faults["internal"] += 1
                logger.exception("MIDI control thread")

    def _handle(self, data: list[int], port: str, received: float) -> None:
        if self.store.specs is not self._specs:  # a model swap redeclared the parameters
            with self._lock:
                self._install(self._map)
        parsers = self._decoders.get(port)
        if parsers is None:
            parsers = self._decoders[port] = (Tokenizer(self.faults), self._new_decoder())
        tokenizer, decoder = parsers
        for message in tokenizer.feed(data):
            self.messages += 1
            if self._learning is not None:
                self._finish_learning(received, message)
            event = decoder.message(message)
            if event is None:
                continue
            if event.source is Source.PROGRAM:
                self._program(event.channel, event.value)
                continue
            for binding in self._bindings:
                if binding.matches(event):
                    self._apply(binding, event, received)

    def _apply(self, binding: Binding, event, received: float) -> None:
        target = binding.mapping.target
        try:
            value = binding.value_for(event, self.store.get(target), received)
            if value is not None:
                self.store.set(target, value, source=binding.source)
                self.writes += 1
        except ParameterError:
            self.faults["refused_value"] += 1

    def _program(self, channel: int, number: int) -> None:
        wanted = self._map.program_channel
        if wanted is False or self._recall is None or (wanted is not None and wanted != channel):
            return
        try:
            self._recall(number)
        except RaveliveError as error:
            self.faults["preset_recall"] += 1
            logger.warning("program change %d: %s", number, error)

    def _finish_learning(self, now: float, message: tuple[int, ...] | None) -> None:
        learning = self._learning
        if learning is None:
            return
        learner, done = learning
        mapping = learner.observe(message, now) if message is not None else learner.expired(now)
        if mapping is None:
            return
        with self._lock:
            if self._learning is not learning:
                return
            self._learning = None
            self._bind(mapping)
        done(None)
        if self.announce is not None:
            self.announce("midi/learned", mapping.target, mapping.describe())

    def _bind(self, mapping: ControlMapping) -> None:
        """`mapping` replaces the target's bindings, in use at once and in the file."""
        kept = tuple(m for m in self._map.mappings if m.target != mapping.target) + (mapping,)
        try:
            self._save(mapping.target, [mapping])
        except ConfigError as error:
            self.report(str(error))  # the binding still holds until the server stops
        self._install(MidiMap(kept, self._map.program_channel, self._map.path))
        self.report(f"MIDI learn: {mapping.target} <- {mapping.describe()}")

    # ---- helpers -----------------------------------------------------------------------------

    def _install(self, midi_map: MidiMap) -> None:
        """Use `midi_map` (held under self._lock, or before the thread starts)."""
        self._specs = self.store.specs
        bindings = []
        for mapping in midi_map.mappings:
            spec = self._specs.get(mapping.target)
            if spec is None:
                self.faults["missing_target"] += 1
                logger.warning("MIDI map: %s is not a parameter of this model; its binding waits", mapping.target)
                continue
            bindings.append(Binding(mapping, spec))
        self._map = midi_map
        self._bindings = bindings
        self._decoders = {}  # the pairs and NRPN use may have changed
        self.feedback.use(bindings)
        if self._audio is not None:
            self._audio.use_midi_gain(gain_cells(bindings, midi_map))

    def _new_decoder(self) -> Decoder:
        return Decoder(self._map.pairs, self._map.uses_parameters)

    def _save(self, target: str, mappings: list[ControlMapping]) -> None:
        if self.config.map_file is not None:
            write_bindings(self.config.map_file, target, mappings, self.store.specs)

    def _send(self, message: list[int]) -> int:
        return self._ports.send(message) if self._ports is not None else 0


def preset_recall(directory: Path | None, store: ParameterStore) -> Callable[[int], object] | None:
    """Program change N -> preset N of `directory` (PresetLibrary.recall_index); None without a directory."""
    if directory is None:
        return None
    library = PresetLibrary(directory)
    return lambda number: library.recall_index(number, store, source=PROGRAM_SOURCE)


PROGRAM_SOURCE = ("midi", "program")  # the source of a recall by program change
