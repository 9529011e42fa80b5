"""The CV control thread: CV readings become parameter writes, gate edges become actions.

The realtime worker only publishes (ravelive.engine.cv_stage.CvSignals);
this thread, woken after each push the worker analysed, maps each smoothed
reading through the jack's calibration onto MIN..MAX of its parameter and
writes the store (source `"cv:CH"`) when the value moved by more than
1/`RESOLUTION` of the range, so OSC and MIDI feedback see CV moves like any
other write. Each new gate edge runs its action once, here, never on the
worker: presets (ravelive.control.presets), latent freezes, MIDI learn.

Construction checks everything a performer would otherwise find out on
stage: the parameters exist and are numbers or switches, preset actions
have a presets directory, `learn` has a learn hook.
"""

import logging
import threading
from collections.abc import Callable

from ravelive.control.cv import CvConfig, CvIn, GateIn
from ravelive.control.params import ParameterStore, ParameterType
from ravelive.control.presets import PresetLibrary
from ravelive.engine.cv_stage import CvSignals
from ravelive.errors import ConfigError, ParameterError, RaveliveError

log = logging.getLogger(__name__)

RESOLUTION = 1000  # a CV write happens when the value moved by 1/1000 of its range (16-bit jacks jitter below)
IDLE_SECONDS = 0.1  # the thread checks for its stop this often when no audio flows

Learn = Callable[[str], None]  # arm MIDI learn for this parameter name (the MIDI service provides it)


class CvControl:
    """Maps CV inputs onto the store and runs gate actions; see the module docstring."""

    def __init__(self, signals: CvSignals, store: ParameterStore, config: CvConfig,
                 presets_dir=None, learn: Learn | None = None) -> None:
        self.signals = signals
        self.store = store
        self.config = config
        self._presets = PresetLibrary(presets_dir) if presets_dir is not None else None
        self._learn = learn
        for jack in config.inputs:
            self._check_input(jack)
        for gate in config.gates:
            self._check_gate(gate)
        self._written: list[float | None] = [None] * len(config.inputs)
        self._rising = [0] * len(config.gates)  # edges already acted on
        self._falling = [0] * len(config.gates)
        self._preset = -1  # preset-next's position in the sorted names
        self._missing: set[str] = set()  # parameters already reported missing (another model plays)
        self._stop = False
        self._thread: threading.Thread | None = None

    def _check_input(self, jack: CvIn) -> None:
        try:
            spec = self.store.spec(jack.parameter)
        except ParameterError as error:
            raise ConfigError(f"--cv-in {jack.channel}={jack.parameter}: {error}") from None
        if spec.type is ParameterType.STRING:
            raise ConfigError(f"--cv-in {jack.channel}={jack.parameter}: a text parameter cannot follow a voltage; "
                              f"map a number or a switch")
        if jack.minimum is None and spec.type is not ParameterType.BOOL and None in (spec.minimum, spec.maximum):
            raise ConfigError(f"--cv-in {jack.channel}={jack.parameter}: the parameter has no range; give one, "
                              f"e.g. {jack.channel}={jack.parameter}:-1:1")

    def _check_gate(self, gate: GateIn) -> None:
        where = f"--gate-in {gate.channel}={gate.action}{':' + gate.argument if gate.argument else ''}"
        if gate.action.startswith("preset") and self._presets is None:
            raise ConfigError(f"{where}: presets need a directory; add --presets-dir DIR")
        if gate.action.startswith("freeze") and not any(name.endswith("/freeze") for name in self.store.specs):
            raise ConfigError(f"{where}: this model has no latent to freeze (no encode/decode pair)")
        if gate.action == "learn":
            if self._learn is None:
                raise ConfigError(f"{where}: MIDI learn is not available in this server; use another action "
                                  f"or start it with MIDI")
            try:
                self.store.spec(gate.argument)
            except ParameterError as error:
                raise ConfigError(f"{where}: {error}") from None

    # -- running -----------------------------------------------------------------------------

    def start(self) -> "CvControl":
        self._thread = threading.Thread(target=self._run, name="ravelive-cv", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(2 * IDLE_SECONDS + 1)
            self._thread = None

    def _run(self) -> None:
        while not self._stop:
            self.signals.wait(IDLE_SECONDS)
            if self._stop:
                return
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a bad value must not end CV control for the rest of the show
                log.exception("CV control failed on one update; carrying on")

    def poll(self) -> None:
        """Write the inputs that moved, run the gate actions of new edges (the thread's one step)."""
        if not self.signals.pushes:
            return
        for index, jack in enumerate(self.config.inputs):
            self._follow(index, jack, float(self.signals.readings[index]))
        for index, gate in enumerate(self.config.gates):
            rising, falling = self.signals.rising[index], self.signals.falling[index]
            if gate.action == "freeze-hold":
                if (rising, falling) != (self._rising[index], self._falling[index]):
                    self.signals.actions += 1
                    self._freeze(self.signals.high[index], gate)
            else:
                for _ in range(rising - self._rising[index]):
                    self._act(gate)
            self._rising[index], self._falling[index] = rising, falling

    def _follow(self, index: int, jack: CvIn, reading: float) -> None:
        try:
            spec = self.store.spec(jack.parameter)
        except ParameterError:
            if jack.parameter not in self._missing:
                log.warning("--cv-in %d: %s is not a parameter of the model playing now; ignored until it is",
                            jack.channel, jack.parameter)
                self._missing.add(jack.parameter)
            return
        self._missing.discard(jack.parameter)
        unit = self.config.calibration.input(jack.channel).to_unit(reading)
        if spec.type is ParameterType.BOOL:
            value, moved = unit >= 0.5, True
        else:
            low = jack.minimum if jack.minimum is not None else spec.minimum
            high = jack.maximum if jack.maximum is not None else spec.maximum
            value = low + unit * (high - low)
            value = min(max(value, min(low, high)), max(low, high))
            if spec.type is ParameterType.INT:
                value = round(value)
            moved = abs(high - low) / RESOLUTION
        last = self._written[index]
        if last is not None and (value == last if spec.type is not ParameterType.FLOAT else abs(value - last) <= moved):
            return
        try:
            self.store.set(jack.parameter, value, source=f"cv:{jack.channel}")
        except ParameterError as error:  # MIN..MAX wider than the parameter's range
            if last is None:
                log.warning("--cv-in %d: %s", jack.channel, error)
            self._written[index] = value
            return
        self._written[index] = value
        self.signals.writes += 1

    def _act(self, gate: GateIn) -> None:
        self.signals.actions += 1
        source = f"cv:{gate.channel}"
        try:
            if gate.action == "freeze":
                frozen = [name for name in self.store.specs if name.endswith("/freeze")]
                self._freeze(not all(self.store.get(name) for name in frozen), gate)
            elif gate.action == "preset-recall":
                self._presets.load(gate.argument, self.store, source)
            elif gate.action == "preset-next":
                names = self._presets.names()
                if not names:
                    log.warning("--gate-in %d=preset-next: no presets saved yet", gate.channel)
                    return
                self._preset = (self._preset + 1) % len(names)
                self._presets.load(names[self._preset], self.store, source)
            elif gate.action == "learn":
                self._learn(gate.argument)
        except RaveliveError as error:
            log.error("--gate-in %d=%s: %s", gate.channel, gate.action, error)

    def _freeze(self, frozen: bool, gate: GateIn) -> None:
        names = [name for name in self.store.specs if name.endswith("/freeze")]
        if names:
            self.store.update({name: frozen for name in names}, source=f"cv:{gate.channel}")
