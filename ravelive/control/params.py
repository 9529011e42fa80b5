"""Parameters declared once, and the store that holds their values.

A `ParameterSpec` is the single declaration of a controllable value: its
name, type, range, default, unit and description. OSC addresses, the OSC
namespace listing, OSCQuery JSON and presets are all generated from specs.

`ParameterStore` is written by control threads (OSC, MIDI, presets, the
server itself) and read by the audio worker through `snapshot()`: an
immutable object rebuilt on every write and swapped in whole, so reading it
is one attribute load with no lock. An optional `check` validates a write
against all the values together (a rule no single spec can state) and
refuses it with ParameterError before anything is stored.
"""

import enum
import math
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ravelive.errors import ParameterError


class ParameterType(enum.Enum):
    """Value types a parameter can have; the value is the OSC type tag."""

    FLOAT = "f"
    INT = "i"
    BOOL = "T"  # OSCQuery spells a boolean parameter's type "T"
    STRING = "s"


@dataclass(frozen=True)
class ParameterSpec:
    """One controllable value: everything a surface needs to expose it."""

    name: str  # slash-separated path under the root, e.g. "latent/3/bias"
    type: ParameterType
    default: Any
    description: str
    minimum: float | None = None  # inclusive; None = unbounded (numbers only)
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings; empty = any string
    unit: str = ""

    def coerce(self, value: Any) -> Any:
        """`value` converted to this parameter's type and checked against its range.

        Ints accept any finite number and round it (a fader sends floats);
        bools accept T/F, 0 and 1; floats accept ints and floats. Raises
        ParameterError with a one-line message naming the value and the fix.
        """
        if self.type is ParameterType.BOOL:
            return self._to_bool(value)
        if self.type is ParameterType.STRING:
            return self._to_string(value)
        number = self._to_number(value)
        if self.type is ParameterType.INT:
            number = int(round(number))
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise ParameterError(f"{self.name}: {_show(value)} is out of range {self.range_text()}")
        return number

    def range_text(self) -> str:
        """The allowed values as people read them: '[-5, 5]', 'one of forward, encode'."""
        if self.type is ParameterType.BOOL:
            return "0 or 1"
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is ParameterType.STRING:
            return "any text"
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"[{low}, {high}]"

    def _to_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ParameterError(f"{self.name}: {_show(value)} is not a bool; send T/F, 0 or 1")

    def _to_string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParameterError(f"{self.name}: {_show(value)} is not text; send a string ({self.range_text()})")
        if self.choices and value not in self.choices:
            raise ParameterError(f"{self.name}: {_show(value)} is not {self.range_text()}")
        return value

    def _to_number(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a bool" if isinstance(value, bool) else f"of type {type(value).__name__}"
            raise ParameterError(f"{self.name}: {_show(value)} is {kind}; send a number in {self.range_text()}")
        if not math.isfinite(value):
            raise ParameterError(f"{self.name}: {_show(value)} is not finite; send a number in {self.range_text()}")
        return float(value)


@dataclass(frozen=True)
class Change:
    """One accepted write, as listeners (OSC feedback, logging) see it."""

    name: str
    value: Any
    source: Hashable | None  # who wrote it (an OSC client, "midi", "preset"); None = the server itself
    adjusted: bool  # the stored value differs from the one sent (rounded, or put back by the server)


Snapshot = TypeVar("Snapshot")
Check = Callable[[Mapping[str, Any], frozenset[str]], None]  # (every value after the write, names written)


class ParameterStore(Generic[Snapshot]):
    """Current values of a set of parameters, with an immutable snapshot for the audio worker.

    `derive` turns the value mapping into the snapshot object (e.g. with a
    ready-made latent transform and linear gains); it runs on the writing
    thread, once per write, never on the audio worker. `check`, when given,
    sees every value as the write would leave them and raises ParameterError
    to refuse it.
    """

    def __init__(
        self,
        specs: Iterable[ParameterSpec],
        derive: Callable[[Mapping[str, Any]], Snapshot] = MappingProxyType,
        check: Check | None = None,
    ) -> None:
        self._derive = derive
        self._check = check
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Change], None]] = []
        self._specs: Mapping[str, ParameterSpec] = MappingProxyType({})
        self._values: dict[str, Any] = {}
        self.redeclare(specs)

    @property
    def specs(self) -> Mapping[str, ParameterSpec]:
        """Every declared parameter by name, in declaration order (read-only)."""
        return self._specs

    def snapshot(self) -> Snapshot:
        """The derived, immutable view of every value; cheap and lock-free to call."""
        return self._snapshot

    def get(self, name: str) -> Any:
        """The current value of `name`; ParameterError if it is not declared."""
        self.spec(name)
        return self._values[name]

    def values(self) -> dict[str, Any]:
        """A copy of every current value by name."""
        with self._lock:
            return dict(self._values)

    def spec(self, name: str) -> ParameterSpec:
        """The declaration of `name`; ParameterError naming close alternatives if unknown."""
        try:
            return self._specs[name]
        except KeyError:
            raise ParameterError(f"{name}: no such parameter; {_suggest(name, self._specs)}") from None

    def set(self, name: str, value: Any, source: Hashable | None = None) -> Change:
        """Validate and store one value; listeners hear of it. ParameterError if refused."""
        return self.update({name: value}, source)[0]

    def update(self, values: Mapping[str, Any], source: Hashable | None = None) -> list[Change]:
        """Validate every value first, then store them all in one snapshot (all or nothing)."""
        coerced = {name: self.spec(name).coerce(value) for name, value in values.items()}
        changes = [Change(name, coerced[name], source, _differs(coerced[name], sent)) for name, sent in values.items()]
        with self._lock:
            if self._check is not None:
                self._check(MappingProxyType({**self._values, **coerced}), frozenset(coerced))
            self._values.update(coerced)
            self._snapshot = self._derive(MappingProxyType(dict(self._values)))
            for change in changes:
                for listener in self._listeners:
                    listener(change)
        return changes

    def redeclare(
        self, specs: Iterable[ParameterSpec], derive: Callable[[Mapping[str, Any]], Snapshot] | None = None,
        check: Check | None = None,
    ) -> None:
        """Replace the declarations (a new model was loaded), and the snapshot builder and check when given.

        A parameter that keeps its name keeps its value when the value is
        still valid for the new declaration; every other one starts at its
        default.
        """
        specs = list(specs)
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise ParameterError(f"parameters declared twice: {', '.join(duplicates)}; give each a unique name")
        with self._lock:
            values = {}
            for spec in specs:
                values[spec.name] = spec.default
                if spec.name in self._values:
                    try:
                        values[spec.name] = spec.coerce(self._values[spec.name])
                    except ParameterError:
                        pass  # the old value does not fit the new range: the default it is
            self._specs = MappingProxyType({spec.name: spec for spec in specs})
            self._values = values
            self._derive = derive or self._derive
            self._check = check or self._check
            self._snapshot = self._derive(MappingProxyType(dict(values)))

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call `listener(change)` after every accepted write, on the writing thread; keep it quick."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Change], None]) -> None:
        """Stop calling `listener`."""
        with self._lock:
            self._listeners.remove(listener)


def _differs(stored: Any, sent: Any) -> bool:
    """True when the stored value is not what the writer sent (1.0 for an int 1 is not a difference)."""
    if isinstance(stored, bool) or isinstance(sent, bool):
        return bool(stored) != bool(sent)
    return stored != sent


def _suggest(name: str, specs: Mapping[str, ParameterSpec]) -> str:
    """'did you mean ...' from the declared names sharing the most leading path parts."""
    parts = name.split("/")
    for depth in range(len(parts) - 1, -1, -1):
        prefix = "/".join(parts[:depth])
        close = [known for known in specs if known.startswith(prefix + "/")] if prefix else []
        if close:
            return "did you mean " + ", ".join(close[:4]) + ("" if len(close) <= 4 else ", ...")
    return "ask /ravelive/namespace for the list"


def _show(value: Any) -> str:
    """A value as messages show it: numbers as sent, text quoted, long things cut."""
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text if any(mark in text for mark in ".einf") else text + ".0"
    text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."

