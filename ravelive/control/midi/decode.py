"""MIDI bytes to control events: the byte-level state machines, pure and unit-testable.

`Tokenizer` splits what an rtmidi callback delivers into whole channel
messages, with running status kept across callbacks, and counts every fault
(a truncated message, stray data bytes, an undefined status byte, SysEx) by
kind. mido's own Tokenizer splits the same way but drops faults silently and
has no running status; message lengths come from mido's spec table.

`Decoder` turns channel messages into `ControlEvent`s: 7-bit CC, 14-bit CC
(MSB/LSB pair, assembled whichever byte comes first), NRPN and RPN (select
with CC 99/98 or 101/100, data entry 6/38 in either order, increment and
decrement 96/97, 127/127 deselects), notes, pitch bend, channel pressure and
program change. Which CCs pair up and whether NRPN is decoded at all come
from the mapping; learn uses a decoder that decodes everything.
"""

import collections
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mido.messages.specs import SPEC_BY_STATUS

NRPN_MSB, NRPN_LSB, RPN_MSB, RPN_LSB = 99, 98, 101, 100
DATA_MSB, DATA_LSB, DATA_INCREMENT, DATA_DECREMENT = 6, 38, 96, 97
PARAMETER_CCS = frozenset({NRPN_MSB, NRPN_LSB, RPN_MSB, RPN_LSB, DATA_MSB, DATA_LSB, DATA_INCREMENT, DATA_DECREMENT})
NULL_NUMBER = 127 * 128 + 127  # 127/127 selects no parameter
_SYSEX, _SYSEX_END = 0xF0, 0xF7


class Source(enum.Enum):
    """What a control sends; the value is the key that names it in a mapping file."""

    CC = "cc"  # 7-bit control change
    CC14 = "cc14"  # 14-bit control change: MSB number, LSB number
    NRPN = "nrpn"
    RPN = "rpn"
    NOTE = "note"
    PITCH_BEND = "pitchbend"
    PRESSURE = "pressure"  # channel pressure (aftertouch)
    PROGRAM = "program"

    @property
    def bits(self) -> int:
        return 14 if self in (Source.CC14, Source.NRPN, Source.RPN, Source.PITCH_BEND) else 7


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """One decoded control movement."""

    source: Source
    channel: int  # 1-16
    number: int  # CC (the MSB of a 14-bit pair), NRPN/RPN parameter, note; 0 for pitch bend, pressure, program
    value: int  # 0-127 (7-bit sources; a note's velocity, 0 = note off) or 0-16383 (14-bit sources)
    step: int = 0  # NRPN/RPN increment (+1) or decrement (-1); `value` is unused then


class Tokenizer:
    """Whole channel messages out of rtmidi's byte chunks, with running status; faults counted by kind."""

    def __init__(self, faults: collections.Counter) -> None:
        self.faults = faults
        self._running = 0  # the last channel status byte; data bytes without a status byte reuse it

    def feed(self, data: Sequence[int]) -> list[tuple[int, ...]]:
        """The complete channel messages in one chunk (status byte first, data bytes after)."""
        messages = []
        index, size = 0, len(data)
        while index < size:
            byte = data[index]
            if byte == _SYSEX:  # SysEx runs to its end byte (or the end of the chunk); no mapping uses it
                end = _index_of(data, _SYSEX_END, index + 1)
                self.faults["sysex"] += 1
                self._running = 0
                index = size if end < 0 else end + 1
                continue
            if byte >= 0xF8:  # realtime bytes may sit anywhere, even inside a message; nothing maps them
                if byte not in SPEC_BY_STATUS:
                    self.faults["unknown_status"] += 1
                index += 1
                continue
            if byte >= 0x80:
                status, index = byte, index + 1
                spec = SPEC_BY_STATUS.get(status)
                if spec is None:
                    self.faults["unknown_status"] += 1
                    self._running = 0
                    index = _next_status(data, index)
                    continue
                self._running = status if status < 0xF0 else 0  # system common messages cancel running status
            elif self._running:
                status = self._running
            else:
                self.faults["stray_data"] += 1
                index = _next_status(data, index)
                continue
            length = SPEC_BY_STATUS[status]["length"] - 1
            body = tuple(data[index:index + length])
            if len(body) < length or any(b >= 0x80 for b in body):
                self.faults["truncated"] += 1
                index = _next_status(data, index)
                continue
            index += length
            if status < 0xF0:
                messages.append((status, *body))
        return messages


class _Pair:
    """One MSB/LSB pair (a 14-bit CC, or NRPN data entry), assembled whichever byte comes first.

    An MSB with no LSB just before it acts at once, as a 7-bit value spread over 14 bits; an LSB
    right after it refines it. Once a pair has come LSB first, a lone LSB waits for its MSB (so it
    is never joined to a stale MSB); once it has come MSB first, a lone LSB refines the last MSB
    (such controllers send only the LSB when the MSB has not changed).
    """

    def __init__(self) -> None:
        self.msb: int | None = None
        self.lsb: int | None = None  # an LSB waiting for its MSB
        self.msb_fresh = False  # the last byte was an MSB that acted alone
        self.msb_first: bool | None = None  # the order this controller sends in, once seen

    def on_msb(self, msb: int) -> int:
        self.msb = msb
        if self.lsb is not None:
            value, self.lsb, self.msb_fresh, self.msb_first = msb << 7 | self.lsb, None, False, False
            return value
        self.msb_fresh = True
        return msb << 7 | msb  # 7-bit spread over 14: 0 -> 0, 64 -> 8256, 127 -> 16383

    def on_lsb(self, lsb: int) -> int | None:
        if self.msb is not None and (self.msb_fresh or self.msb_first):
            if self.msb_fresh:
                self.msb_first = True
            self.msb_fresh = False
            return self.msb << 7 | lsb
        self.lsb = lsb
        return None


@dataclass
class _Parameter:
    """NRPN/RPN selection of one channel."""

    registered: bool = False
    msb: int = 127
    lsb: int = 127
    data: _Pair | None = None

    @property
    def number(self) -> int:
        return self.msb << 7 | self.lsb


class Decoder:
    """Channel messages to ControlEvents, with per-channel 14-bit pairing and NRPN/RPN state."""

    def __init__(self, pairs: Mapping[int, int] = {}, nrpn: bool = False) -> None:
        """`pairs`: MSB CC number -> its LSB number, for each 14-bit CC in use; `nrpn`: decode CC 6/38/96-101."""
        self._pairs = dict(pairs)
        self._lsbs = {lsb: msb for msb, lsb in self._pairs.items()}
        self._nrpn = nrpn
        self._state: dict[tuple[int, int], _Pair] = {}
        self._parameters: dict[int, _Parameter] = {}

    def decode(self, messages: Iterable[tuple[int, ...]]) -> list[ControlEvent]:
        events = []
        for message in messages:
            event = self.message(message)
            if event is not None:
                events.append(event)
        return events

    def message(self, message: tuple[int, ...]) -> ControlEvent | None:
        """The event one channel message makes, or None (half a pair, a parameter select)."""
        kind, channel = message[0] & 0xF0, (message[0] & 0x0F) + 1
        if kind == 0xB0:
            return self._control_change(channel, message[1], message[2])
        if kind == 0x90:
            return ControlEvent(Source.NOTE, channel, message[1], message[2])
        if kind == 0x80:
            return ControlEvent(Source.NOTE, channel, message[1], 0)
        if kind == 0xE0:
            return ControlEvent(Source.PITCH_BEND, channel, 0, message[2] << 7 | message[1])
        if kind == 0xD0:
            return ControlEvent(Source.PRESSURE, channel, 0, message[1])
        if kind == 0xC0:
            return ControlEvent(Source.PROGRAM, channel, 0, message[1])
        return None  # polyphonic aftertouch: nothing maps it

    def _control_change(self, channel: int, number: int, value: int) -> ControlEvent | None:
        if self._nrpn and number in PARAMETER_CCS:
            return self._parameter(channel, number, value)
        if number in self._pairs:
            pair = self._state.setdefault((channel, number), _Pair())
            return ControlEvent(Source.CC14, channel, number, pair.on_msb(value))
        if number in self._lsbs:
            msb = self._lsbs[number]
            combined = self._state.setdefault((channel, msb), _Pair()).on_lsb(value)
            return None if combined is None else ControlEvent(Source.CC14, channel, msb, combined)
        return ControlEvent(Source.CC, channel, number, value)

    def _parameter(self, channel: int, number: int, value: int) -> ControlEvent | None:
        selected = self._parameters.setdefault(channel, _Parameter())
        if number in (NRPN_MSB, NRPN_LSB, RPN_MSB, RPN_LSB):
            registered = number in (RPN_MSB, RPN_LSB)
            if registered != selected.registered:
                selected.registered, selected.msb, selected.lsb = registered, 127, 127
            if number in (NRPN_MSB, RPN_MSB):
                selected.msb = value
            else:
                selected.lsb = value
            selected.data = _Pair()  # a new selection starts a new data pair
            return None
        if selected.number == NULL_NUMBER or selected.data is None:
            return None  # data entry with nothing selected: not ours
        source = Source.RPN if selected.registered else Source.NRPN
        if number in (DATA_INCREMENT, DATA_DECREMENT):
            return ControlEvent(source, channel, selected.number, 0, 1 if number == DATA_INCREMENT else -1)
        combined = selected.data.on_msb(value) if number == DATA_MSB else selected.data.on_lsb(value)
        return None if combined is None else ControlEvent(source, channel, selected.number, combined)


def _index_of(data: Sequence[int], byte: int, start: int) -> int:
    for index in range(start, len(data)):
        if data[index] == byte:
            return index
    return -1


def _next_status(data: Sequence[int], index: int) -> int:
    """The index of the next status byte at or after `index` (the end when there is none)."""
    while index < len(data) and data[index] < 0x80:
        index += 1
    return index
