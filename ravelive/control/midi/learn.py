"""MIDI learn: the next control moved is bound to the armed parameter, and the file is written back.

`Learner` watches raw channel messages (before any mapping decodes them) and
decides from the first few what was moved: a note, pitch bend, channel
pressure, an NRPN or RPN (CC 99/98 or 101/100 then data entry), a 14-bit CC
(CC n and n + 32 together), a relative encoder (the same value again and
again: 1 or 127 two's complement, 63 or 65 offset 64; sign bit sends what
two's complement does when turned up, so learn cannot tell it apart: write
`mode = "sign-bit"` by hand), else a 7-bit CC. It decides after
`LEARN_MESSAGES` messages of the control, or `LEARN_SECONDS` after its first.

`write_bindings` replaces the [[map]] tables of one target in the mapping
file with tomlkit (comments and layout kept) and renames a temporary file
over it, so a crash never leaves half a file.
"""

import datetime
import os
from collections.abc import Mapping
from pathlib import Path

import tomlkit

from ravelive.control.midi.decode import DATA_LSB, DATA_MSB, NRPN_LSB, NRPN_MSB, RPN_LSB, RPN_MSB, Source
from ravelive.control.midi.mapping import ControlMapping
from ravelive.control.params import ParameterSpec, ParameterType
from ravelive.errors import ConfigError

LEARN_MESSAGES = 4  # a turn of a knob sends many; four tell a pair, an NRPN and a relative encoder apart
LEARN_SECONDS = 0.3  # a control that sends fewer is decided this long after its first message
_SELECT = {NRPN_MSB: Source.NRPN, NRPN_LSB: Source.NRPN, RPN_MSB: Source.RPN, RPN_LSB: Source.RPN}


class Learner:
    """Decides which control was moved for one armed parameter."""

    def __init__(self, spec: ParameterSpec) -> None:
        self.spec = spec
        self._seen: list[tuple[int, ...]] = []  # CC messages of the control being moved
        self._first = 0.0

    def observe(self, message: tuple[int, ...], now: float) -> ControlMapping | None:
        """Feed one channel message; the mapping once the control is known."""
        kind, channel = message[0] & 0xF0, (message[0] & 0x0F) + 1
        if kind == 0x90 and message[2] > 0:
            return self._mapping(Source.NOTE, channel, message[1], toggle=self.spec.type is ParameterType.BOOL)
        if kind == 0xE0:
            return self._mapping(Source.PITCH_BEND, channel)
        if kind == 0xD0:
            return self._mapping(Source.PRESSURE, channel)
        if kind != 0xB0:
            return None
        if self._seen and (message[0] != self._seen[0][0]):
            return None  # another channel: not the control being moved
        if not self._seen:
            self._first = now
        self._seen.append(message)
        if len(self._seen) >= LEARN_MESSAGES:
            return self.decide()
        return None

    def expired(self, now: float) -> ControlMapping | None:
        """The mapping when the first message is LEARN_SECONDS old, else None."""
        if self._seen and now - self._first >= LEARN_SECONDS:
            return self.decide()
        return None

    def decide(self) -> ControlMapping | None:
        channel = (self._seen[0][0] & 0x0F) + 1
        numbers = [m[1] for m in self._seen]
        values = [m[2] for m in self._seen]
        selected = [(n, v) for n, v in zip(numbers, values) if n in _SELECT]
        if selected:
            source = _SELECT[selected[0][0]]
            msb = next((v for n, v in selected if n in (NRPN_MSB, RPN_MSB)), 0)
            lsb = next((v for n, v in selected if n in (NRPN_LSB, RPN_LSB)), 0)
            if any(n in (DATA_MSB, DATA_LSB) for n in numbers) or len(self._seen) >= LEARN_MESSAGES:
                return self._mapping(source, channel, msb << 7 | lsb)
            return None
        first = numbers[0]
        pair = next((n for n in numbers if n < 32 and n + 32 in numbers), None)
        if pair is None and first >= 32 and first - 32 in numbers:
            pair = first - 32
        if pair is not None:
            return self._mapping(Source.CC14, channel, pair, lsb=pair + 32)
        values = [v for n, v in zip(numbers, values) if n == first]
        repeated = any(a == b for a, b in zip(values, values[1:]))
        mode = "absolute"
        if repeated and all(v in (63, 65) or 57 <= v <= 71 and v != 64 for v in values):
            mode = "offset-64"
        elif repeated and all(1 <= v <= 15 or 113 <= v <= 127 for v in values):
            mode = "twos-complement"
        return self._mapping(Source.CC, channel, first, mode=mode)

    def _mapping(self, source: Source, channel: int, number: int = 0, **options) -> ControlMapping:
        low, high = (0.0, 1.0) if self.spec.type is ParameterType.BOOL else (self.spec.minimum, self.spec.maximum)
        if low is None or high is None:  # unbounded: learn a unit range; edit min/max in the file
            low, high = (low if low is not None else 0.0), (high if high is not None else (low or 0.0) + 1.0)
        return ControlMapping(self.spec.name, source, number, channel=channel, minimum=low, maximum=high, **options)


def learnable(spec: ParameterSpec) -> str | None:
    """Why `spec` cannot be learned, or None."""
    if spec.type is ParameterType.STRING:
        return f"{spec.name} holds text ({spec.range_text()}); MIDI drives numbers and switches"
    return None


def mapping_table(mapping: ControlMapping, spec: ParameterSpec | None = None) -> tomlkit.items.Table:
    """The [[map]] table of `mapping`, keys that differ from the defaults only."""
    table = tomlkit.table()
    table.add("target", mapping.target)
    if mapping.source in (Source.PITCH_BEND, Source.PRESSURE):
        table.add(mapping.source.value, True)
    else:
        table.add(mapping.source.value, mapping.number)
    if mapping.source is Source.CC14 and mapping.lsb != mapping.number + 32:
        table.add("lsb", mapping.lsb)
    table.add("channel", mapping.channel if mapping.channel is not None else "any")
    default_range = (0.0, 1.0) if spec is None or spec.type is ParameterType.BOOL else (spec.minimum, spec.maximum)
    if (mapping.minimum, mapping.maximum) != default_range:
        table.add("min", mapping.minimum)
        table.add("max", mapping.maximum)
    for key, value, default in (("mode", mapping.mode, "absolute"), ("toggle", mapping.toggle, False),
                                ("takeover", mapping.takeover, "immediate"), ("curve", mapping.curve, "linear"),
                                ("invert", mapping.invert, False)):
        if value != default:
            table.add(key, value)
    return table


def write_bindings(path: Path, target: str, mappings: list[ControlMapping],
                   specs: Mapping[str, ParameterSpec] | None = None) -> None:
    """Make the [[map]] tables of `target` in `path` be `mappings` (none: forget it); atomic, comments kept."""
    path = Path(path)
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as error:
        raise ConfigError(f"{path}: cannot be updated ({error}); fix it, or start with another --midi-map") from error
    tables = document.get("map")
    if tables is None:
        tables = tomlkit.aot()
        document.append("map", tables)
    for index in range(len(tables) - 1, -1, -1):
        if tables[index].get("target") == target:
            del tables[index]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    for mapping in mappings:
        table = mapping_table(mapping, (specs or {}).get(target))
        table.comment(f"learned {stamp}")
        tables.append(table)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot be written ({error.strerror}); the binding holds until the server stops")
