"""The MIDI mapping file (TOML): its schema, and validation that names the file and line of every fault.

```toml
[[map]]
target = "latent/0/bias"   # any parameter the server declares (/ravelive/namespace lists them)
cc = 1                     # or cc14 = 1 (lsb = 33 by default), nrpn = N, rpn = N, note = N, pitchbend = true,
                           # pressure = true
channel = 1                # 1-16 or "any" (the default)
min = -2.0                 # the parameter's range by default
max = 2.0
curve = "linear"           # "exponential", or a number: the power of a power curve
invert = false
mode = "absolute"          # or a relative encoder: "twos-complement", "offset-64", "sign-bit" (aliases below)
step = 0.01                # relative: fraction of min..max per encoder tick
takeover = "immediate"     # or "pickup"
toggle = false             # notes: each note-on flips the value (else momentary: on = max, off = min)
velocity = false           # notes: the velocity sets the value

[program]                  # program change N recalls preset N
channel = "any"
```

A file is read whole and checked against the parameter declarations before
any of it is used: `load_map` either returns a complete `MidiMap` or raises
`MappingFileError` listing every fault as `FILE:LINE: message`.
"""

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ravelive.control.midi.decode import Source
from ravelive.control.params import ParameterSpec, ParameterType
from ravelive.errors import ConfigError

MAX_MAP_BYTES = 1 << 20  # thousands of mappings fit in far less
DEFAULT_STEP = 1 / 128  # relative encoders: 128 ticks sweep the whole range
PICKUP_DISTANCE = 3 / 128  # pickup accepts a knob this close (as a fraction of min..max) to the current value
PICKUP_HOLD_SECONDS = 0.05  # ... and any move this soon after the last accepted one, so fast moves still work

MODES = {  # relative encodings by what they send; the aliases are what controller editors and DAWs call them
    "absolute": "absolute",
    "twos-complement": "twos-complement", "2's comp.": "twos-complement", "2's complement": "twos-complement",
    "twos complement": "twos-complement", "relative 1": "twos-complement",
    "offset-64": "offset-64", "bin offset": "offset-64", "binary offset": "offset-64", "relative 2": "offset-64",
    "sign-bit": "sign-bit", "signed bit": "sign-bit", "sign magnitude": "sign-bit", "relative 3": "sign-bit",
}
TAKEOVERS = ("immediate", "pickup")
SOURCE_KEYS = ("cc", "cc14", "nrpn", "rpn", "note", "pitchbend", "pressure")
MAP_KEYS = SOURCE_KEYS + ("target", "lsb", "channel", "min", "max", "curve", "invert", "mode", "step", "takeover",
                          "toggle", "velocity")
PROGRAM_KEYS = ("channel",)
_NUMBER_LIMITS = {"cc": 127, "cc14": 127, "lsb": 127, "nrpn": 16383, "rpn": 16383, "note": 127}


class MappingFileError(ConfigError):
    """A mapping file that cannot be used; `problems` holds one `FILE:LINE: message` per fault."""

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 1} more; `ravelive midi check FILE` lists them)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems = problems


@dataclass(frozen=True)
class ControlMapping:
    """One control driving one parameter."""

    target: str
    source: Source
    number: int = 0  # CC (MSB for cc14), NRPN/RPN parameter, note; 0 for pitch bend and pressure
    lsb: int | None = None  # cc14: the LSB's CC number
    channel: int | None = None  # 1-16; None: any channel
    minimum: float = 0.0
    maximum: float = 1.0
    curve: str | float = "linear"  # "linear", "exponential", or the power of a power curve
    invert: bool = False
    mode: str = "absolute"  # or twos-complement, offset-64, sign-bit
    step: float = DEFAULT_STEP
    takeover: str = "immediate"
    toggle: bool = False
    velocity: bool = False
    line: int = 0  # where it was declared (0: learned, not read from a file)

    @property
    def relative(self) -> bool:
        return self.mode != "absolute"

    def describe(self) -> str:
        """The control in a few words: 'cc14 1/33 on channel 1', 'nrpn 300 on any channel'."""
        channel = "any channel" if self.channel is None else f"channel {self.channel}"
        number = {Source.CC14: f" {self.number}/{self.lsb}", Source.PITCH_BEND: "", Source.PRESSURE: ""}.get(
            self.source, f" {self.number}")
        mode = "" if not self.relative else f" ({self.mode})"
        return f"{self.source.value}{number}{mode} on {channel}"

    def control(self) -> tuple[Source, int | None, int]:
        """What identifies the physical control: source, channel, number."""
        return self.source, self.channel, self.number


@dataclass(frozen=True)
class MidiMap:
    """A whole mapping file, validated."""

    mappings: tuple[ControlMapping, ...] = ()
    program_channel: int | None | bool = False  # False: program changes ignored; None: any channel; else 1-16
    path: Path | None = None

    @property
    def pairs(self) -> dict[int, int]:
        """MSB -> LSB CC numbers of the 14-bit CCs in use."""
        return {m.number: m.lsb for m in self.mappings if m.source is Source.CC14 and m.lsb is not None}

    @property
    def uses_parameters(self) -> bool:
        """Whether any mapping reads NRPN or RPN (then CC 6, 38 and 96-101 are data entry, not plain CCs)."""
        return any(m.source in (Source.NRPN, Source.RPN) for m in self.mappings)


def load_map(path: Path, specs: Mapping[str, ParameterSpec]) -> MidiMap:
    """Read and check `path` against `specs`; MappingFileError listing every fault."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_MAP_BYTES:
            raise MappingFileError([f"{path}: larger than {MAX_MAP_BYTES} bytes; is it a mapping file?"])
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MappingFileError([f"{path}: cannot be read ({error.strerror})"]) from error
    except UnicodeDecodeError as error:
        raise MappingFileError([f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]) from error
    return parse_map(text, specs, path)


def parse_map(text: str, specs: Mapping[str, ParameterSpec], path: Path | str = "<mapping>") -> MidiMap:
    """Check TOML `text` against `specs`: a complete MidiMap, or MappingFileError with every fault."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        line = found.group(1) if found else "1"
        raise MappingFileError([f"{path}:{line}: not valid TOML: {str(error).split(' (at line')[0]}"]) from None
    lines = _KeyLines(text)
    top = _Where(path, lines, None)
    for key in document:
        if key not in ("map", "program", "cv"):  # [cv]: the interface's calibration, read by ravelive.control.cv
            top.fault(key, f"unknown key {key!r}; a mapping file holds [[map]] tables, one [program] table and "
                           f"one [cv] table")
    tables = document.get("map", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        top.fault("map", "'map' must be [[map]] tables")
        tables = []
    problems = top.problems
    mappings = []
    for index, table in enumerate(tables):
        where = _Where(path, lines, index)
        mapping = _mapping(table, specs, where)
        problems.extend(where.problems)
        if mapping is not None:
            mappings.append(mapping)
    program: int | None | bool = False
    if "program" in document:
        where = _Where(path, lines, "program")
        table = document["program"]
        if not isinstance(table, dict):
            where.fault("program", "'program' must be a [program] table")
        else:
            where.unknown_keys(table, PROGRAM_KEYS, "[program]")
            program = _channel(table, where)
        problems.extend(where.problems)
    if problems:
        raise MappingFileError([text for _, text in sorted(problems, key=lambda problem: problem[0])])
    return MidiMap(tuple(mappings), program, Path(path) if not isinstance(path, Path) else path)


class _KeyLines:
    """The line of each key in each [[map]] table (tomllib keeps no positions): a scan of the text."""

    _HEADER = re.compile(r"^\s*\[\[\s*map\s*\]\]")
    _TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str) -> None:
        self.tables: list[int] = []  # header line of each [[map]]
        self.keys: dict[tuple[int | str | None, str], int] = {}
        current: int | str | None = None  # None: top level
        for number, line in enumerate(text.splitlines(), start=1):
            if self._HEADER.match(line):
                current = len(self.tables)
                self.tables.append(number)
            elif (table := self._TABLE.match(line)) is not None:
                current = table.group(1).strip()
                self.keys.setdefault((None, current), number)
            elif (key := self._KEY.match(line)) is not None:
                self.keys.setdefault((current, key.group(1).strip('"')), number)

    def find(self, key: str, table: int | str | None = None) -> int:
        if (table, key) in self.keys:
            return self.keys[(table, key)]
        if isinstance(table, int) and table < len(self.tables):
            return self.tables[table]
        if isinstance(table, str) and (None, table) in self.keys:
            return self.keys[(None, table)]
        return self.keys.get((None, key), 1)


@dataclass
class _Where:
    """Collects the faults of one table, each with its line."""

    path: Path | str
    lines: _KeyLines
    table: int | str | None
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, "FILE:LINE: message")

    @property
    def header(self) -> int:
        return self.lines.find("", self.table)

    def fault(self, key: str, message: str) -> None:
        line = self.lines.find(key, self.table)
        self.problems.append((line, f"{self.path}:{line}: {message}"))

    def unknown_keys(self, table: dict, known: tuple[str, ...], name: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
                self.fault(key, f"unknown key {key!r} in {name}; {hint}")


def _mapping(table: dict[str, Any], specs: Mapping[str, ParameterSpec], where: _Where) -> ControlMapping | None:
    where.unknown_keys(table, MAP_KEYS, "[[map]]")
    spec = _target(table, specs, where)
    sources = [key for key in SOURCE_KEYS if key in table]
    if len(sources) != 1:
        named = ", ".join(sources) if sources else "none"
        where.fault(sources[1] if len(sources) > 1 else "target",
                    f"[[map]] needs exactly one source ({', '.join(SOURCE_KEYS)}); it has {named}")
        return None
    key = sources[0]
    source = Source(key)
    number, lsb = 0, None
    if source in (Source.PITCH_BEND, Source.PRESSURE):
        if table[key] is not True:
            where.fault(key, f"{key} = {table[key]!r}: write {key} = true")
    else:
        number = _number(table, key, where)
        if source in (Source.NRPN, Source.RPN) and number == 16383:
            where.fault(key, f"{key} = 16383 is 127/127, the null parameter that deselects; no data is sent to it")
            number = None
    if source is Source.CC14:
        default_lsb = number + 32 if number is not None and number + 32 <= 127 else None
        lsb = _number(table, "lsb", where) if "lsb" in table else default_lsb
        if lsb is None and "lsb" not in table and number is not None:
            where.fault(key, f"cc14 = {number}: MSB + 32 is beyond 127; give the LSB's number: lsb = N")
        elif lsb is not None and lsb == number:
            where.fault("lsb", f"lsb = {lsb} is the MSB's own number; give the LSB's CC number")
    elif "lsb" in table:
        where.fault("lsb", "lsb only goes with cc14 (a 14-bit CC pair)")
    channel = _channel(table, where)
    mode = _choice(table, "mode", MODES, "absolute", where)
    if mode not in (None, "absolute") and source is not Source.CC:
        where.fault("mode", f"mode = {table['mode']!r}: relative encoders send 7-bit CCs; use cc = N "
                            "(NRPN increment/decrement 96/97 is always relative)")
    takeover = _choice(table, "takeover", {t: t for t in TAKEOVERS}, "immediate", where)
    toggle = _flag(table, "toggle", where)
    velocity = _flag(table, "velocity", where)
    if (toggle or velocity) and source is not Source.NOTE:
        where.fault("toggle" if toggle else "velocity", f"{'toggle' if toggle else 'velocity'} only goes with note = N")
    invert = _flag(table, "invert", where)
    step = _real(table, "step", where, DEFAULT_STEP)
    if step is not None and not 0 < step <= 1:
        where.fault("step", f"step = {step:g} is outside (0, 1]: the fraction of min..max one encoder tick moves")
    if spec is None or number is None or channel is False or mode is None or takeover is None or step is None:
        return None
    low, high = _range(table, spec, where)
    curve = _curve(table, where, low, high)
    if low is None or curve is None or where.problems:
        return None
    return ControlMapping(
        target=spec.name, source=source, number=number, lsb=lsb, channel=channel, minimum=low, maximum=high,
        curve=curve, invert=invert, mode=mode, step=step, takeover=takeover, toggle=toggle, velocity=velocity,
        line=where.header,
    )


def _target(table: dict[str, Any], specs: Mapping[str, ParameterSpec], where: _Where) -> ParameterSpec | None:
    name = table.get("target")
    if not isinstance(name, str):
        where.fault("target", "[[map]] needs target = \"PARAMETER\" (a name /ravelive/namespace lists)")
        return None
    spec = specs.get(name.strip("/").removeprefix("ravelive/"))
    if spec is None:
        close = difflib.get_close_matches(name, list(specs), n=3)
        hint = "did you mean " + ", ".join(close) if close else "`ravelive midi check FILE --model M` lists the names"
        where.fault("target", f"target {name!r}: no such parameter; {hint}")
        return None
    if spec.type is ParameterType.STRING:
        where.fault("target", f"target {name!r} holds text ({spec.range_text()}); MIDI drives numbers and switches")
        return None
    return spec


def _number(table: dict[str, Any], key: str, where: _Where) -> int | None:
    value, limit = table[key], _NUMBER_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        where.fault(key, f"{key} = {value!r} is not a whole number in 0-{limit}")
        return None
    return value


def _channel(table: dict[str, Any], where: _Where) -> int | None | bool:
    value = table.get("channel", "any")
    if value == "any":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        where.fault("channel", f"channel = {value!r} is not 1-16 or \"any\" (channels count from 1)")
        return False
    return value


def _choice(table: dict[str, Any], key: str, allowed: Mapping[str, str], default: str, where: _Where) -> str | None:
    value = table.get(key, default)
    normal = " ".join(str(value).lower().replace("_", " ").split()) if isinstance(value, str) else None
    for name, meaning in allowed.items():
        if normal in (name, name.replace("-", " ")):
            return meaning
    where.fault(key, f"{key} = {value!r} is not one of {', '.join(dict.fromkeys(allowed.values()))}")
    return None


def _flag(table: dict[str, Any], key: str, where: _Where) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        where.fault(key, f"{key} = {value!r} is not true or false")
        return False
    return value


def _real(table: dict[str, Any], key: str, where: _Where, default: float | None = None) -> float | None:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        where.fault(key, f"{key} = {value!r} is not a finite number")
        return None
    return float(value)


def _range(table: dict[str, Any], spec: ParameterSpec, where: _Where) -> tuple[float | None, float | None]:
    if spec.type is ParameterType.BOOL:
        low_default, high_default = 0.0, 1.0
    else:
        low_default, high_default = spec.minimum, spec.maximum
    if ("min" not in table and low_default is None) or ("max" not in table and high_default is None):
        where.fault("target", f"target {spec.name!r} has no fixed range ({spec.range_text()}): give min and max")
        return None, None
    low = _real(table, "min", where) if "min" in table else low_default
    high = _real(table, "max", where) if "max" in table else high_default
    if low is None or high is None:
        return None, None
    if low == high:
        where.fault("max", f"min and max are both {low:g}: the control would do nothing")
        return None, None
    return float(low), float(high)


def _curve(table: dict[str, Any], where: _Where, low: float | None, high: float | None) -> str | float | None:
    value = table.get("curve", "linear")
    if value in ("linear", "exponential", "exp"):
        if value != "linear" and low is not None and high is not None and not (low * high > 0):
            where.fault("curve", f"an exponential curve needs min and max of one sign, not zero (they are {low:g}, "
                                 f"{high:g}); use a power instead, e.g. curve = 2")
            return None
        return "exponential" if value == "exp" else value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.05 <= value <= 20:
        return float(value)
    where.fault("curve", f"curve = {value!r} is not \"linear\", \"exponential\" or a power in [0.05, 20]")
    return None
