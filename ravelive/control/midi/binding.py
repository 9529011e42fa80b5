"""One mapping at work: a control's events become parameter values, and values become feedback bytes.

A `Binding` holds what one mapping needs between messages: the knob's last
position (for pickup), when a value was last accepted, a note toggle's
state. Positions are normalised to 0..1 (`raw / 127` or `raw / 16383`); the
mapping's invert and curve turn a position into a value in min..max, and
`position_of` is the exact inverse, used for pickup, relative encoders
(which move the current value, wherever it came from) and feedback.
"""

import math
from collections.abc import Hashable
from typing import Any

from ravelive.control.midi.decode import ControlEvent, Source
from ravelive.control.midi.mapping import PICKUP_DISTANCE, PICKUP_HOLD_SECONDS, ControlMapping
from ravelive.control.params import ParameterSpec, ParameterType

SOURCE_TAG = "midi"  # store writes from MIDI carry ("midi", control): OSC and MIDI feedback skip the originator


class Binding:
    """The runtime state of one ControlMapping against its parameter's declaration."""

    def __init__(self, mapping: ControlMapping, spec: ParameterSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.source: Hashable = (SOURCE_TAG, mapping.source.value, mapping.channel, mapping.number)
        self._full = 16383 if mapping.source.bits == 14 else 127
        self._last_position: float | None = None  # where the knob was last seen (pickup: has it crossed?)
        self._last_accepted = -math.inf  # monotonic time of the last accepted value
        self.pickup_waiting = False  # pickup: the knob is away from the value and not accepted yet

    def matches(self, event: ControlEvent) -> bool:
        m = self.mapping
        return (event.source is m.source and event.number == m.number
                and (m.channel is None or m.channel == event.channel))

    def value_for(self, event: ControlEvent, current: Any, now: float) -> Any | None:
        """The value to store for `event`, given the parameter's `current` value; None: nothing to store."""
        m = self.mapping
        if event.step:  # NRPN/RPN increment or decrement
            return self._move(current, event.step)
        if m.relative:
            ticks = relative_ticks(m.mode, event.value)
            return None if ticks == 0 else self._move(current, ticks)
        if m.source is Source.NOTE:
            return self._note(event, current)
        position = event.value / self._full
        if m.takeover == "pickup" and not self._picks_up(position, current, now):
            return None
        self._last_accepted = now
        return self.value_at(position)

    def value_at(self, position: float) -> Any:
        """The parameter value at knob `position` (0..1), through invert and curve, clipped to the spec."""
        m = self.mapping
        x = 1.0 - position if m.invert else position
        x = min(1.0, max(0.0, x))
        if m.curve == "exponential":
            value = m.minimum * (m.maximum / m.minimum) ** x
        else:
            value = m.minimum + (m.maximum - m.minimum) * x ** (1.0 if m.curve == "linear" else m.curve)
        if self.spec.type is ParameterType.BOOL:  # on in the upper half of the travel
            middle = (m.minimum + m.maximum) / 2
            return value >= middle if m.maximum > m.minimum else value < middle
        low = -math.inf if self.spec.minimum is None else self.spec.minimum
        high = math.inf if self.spec.maximum is None else self.spec.maximum
        value = min(high, max(low, value))
        return int(round(value)) if self.spec.type is ParameterType.INT else value

    def position_of(self, value: Any) -> float:
        """The knob position (0..1) that gives `value`: the inverse of value_at, clipped to 0..1."""
        m = self.mapping
        if isinstance(value, bool):
            value = m.maximum if value else m.minimum
        value = float(value)
        if m.curve == "exponential":
            ratio = value / m.minimum
            x = math.log(ratio) / math.log(m.maximum / m.minimum) if ratio > 0 else 0.0
        else:
            x = (value - m.minimum) / (m.maximum - m.minimum)
            x = min(1.0, max(0.0, x))
            if m.curve != "linear":
                x = x ** (1.0 / m.curve)
        x = min(1.0, max(0.0, x))
        return 1.0 - x if m.invert else x

    def raw_of(self, value: Any) -> int:
        """The MIDI value (0-127 or 0-16383) that shows `value` on this control."""
        return round(self.position_of(value) * self._full)

    def feedback(self, value: Any) -> list[list[int]]:
        """The messages that show `value` on the control, in the mapping's own encoding."""
        m = self.mapping
        status = (m.channel or 1) - 1
        raw = self.raw_of(value)
        if m.source is Source.CC:
            return [[0xB0 | status, m.number, raw]]
        if m.source is Source.CC14:
            return [[0xB0 | status, m.number, raw >> 7], [0xB0 | status, m.lsb, raw & 0x7F]]
        if m.source in (Source.NRPN, Source.RPN):
            select = (99, 98) if m.source is Source.NRPN else (101, 100)
            return [[0xB0 | status, select[0], m.number >> 7], [0xB0 | status, select[1], m.number & 0x7F],
                    [0xB0 | status, 6, raw >> 7], [0xB0 | status, 38, raw & 0x7F]]
        if m.source is Source.NOTE:
            on = self.position_of(value) >= 0.5
            return [[0x90 | status, m.number, 127]] if on else [[0x80 | status, m.number, 0]]
        if m.source is Source.PITCH_BEND:
            return [[0xE0 | status, raw & 0x7F, raw >> 7]]
        if m.source is Source.PRESSURE:
            return [[0xD0 | status, raw]]
        return []

    def _move(self, current: Any, ticks: int) -> Any:
        position = self.position_of(current) + ticks * self.mapping.step * (-1 if self.mapping.invert else 1)
        return self.value_at(min(1.0, max(0.0, position)))

    def _note(self, event: ControlEvent, current: Any) -> Any | None:
        m = self.mapping
        if m.toggle:
            if event.value == 0:
                return None  # toggles flip on note-on only
            return self.value_at(0.0 if self.position_of(current) >= 0.5 else 1.0)
        if event.value == 0:
            return self.value_at(0.0)
        return self.value_at(event.value / 127 if m.velocity else 1.0)

    def _picks_up(self, position: float, current: Any, now: float) -> bool:
        """Soft takeover: accept once the knob is near the current value or crosses it, or moves on quickly."""
        target = self.position_of(current)
        previous, self._last_position = self._last_position, position
        if now - self._last_accepted <= PICKUP_HOLD_SECONDS:
            return True
        near = abs(position - target) <= PICKUP_DISTANCE
        crossed = previous is not None and (previous - target) * (position - target) <= 0
        self.pickup_waiting = not (near or crossed)
        return not self.pickup_waiting


def relative_ticks(mode: str, value: int) -> int:
    """Encoder ticks (signed) in one relative CC value."""
    if mode == "twos-complement":  # 1..63 up, 127..65 down (64: -64)
        return value if value < 64 else value - 128
    if mode == "offset-64":  # 65 up one, 63 down one
        return value - 64
    if mode == "sign-bit":  # 1..63 up, 65..127 down (bit 6 is the sign)
        return value & 0x3F if value < 64 else -(value & 0x3F)
    return 0
