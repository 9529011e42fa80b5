"""MIDI feedback: every change of a mapped parameter goes out to --midi-out in its mapping's encoding.

The store listener only records the latest change per parameter (it runs on
the writing thread, under the store's lock); one thread sends, at most
`rate` times a second, the messages that show each new value: a CC, an
MSB+LSB pair, an NRPN's four CCs, a note on/off, a pitch bend. So LED rings
and motor faders follow changes from OSC, presets, learn and morphs. A
change is not sent back to the control that made it (a motor fader would
fight the hand moving it), except to relative encoders: they do not know the
value, and their LED ring shows only what it is told.
"""

import collections
import threading
from collections.abc import Callable, Sequence

from ravelive.control.midi.binding import Binding
from ravelive.control.params import Change
from ravelive.control.push_thread import PushThread


class MidiFeedback:
    """Sends parameter changes to the feedback outputs."""

    def __init__(self, send: Callable[[list[int]], int], faults: collections.Counter, rate: float) -> None:
        self._send = send
        self._faults = faults
        self._bindings: dict[str, tuple[Binding, ...]] = {}  # by target; replaced whole, read without a lock
        self._pending: dict[str, Change] = {}
        self._lock = threading.Lock()
        self.sent = 0
        self._thread = PushThread("ravelive-midi-feedback", self._push, faults, rate)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._thread.close()

    def use(self, bindings: Sequence[Binding]) -> None:
        """Send feedback for these bindings from now on."""
        by_target: dict[str, list[Binding]] = {}
        for binding in bindings:
            by_target.setdefault(binding.mapping.target, []).append(binding)
        self._bindings = {target: tuple(found) for target, found in by_target.items()}

    def show(self, bindings: Sequence[Binding], values: dict[str, object]) -> None:
        """Send the current values to `bindings` now (after a connect or a learn), whoever set them."""
        for binding in bindings:
            if binding.mapping.target in values:
                self._emit(binding, values[binding.mapping.target])

    def on_change(self, change: Change) -> None:
        """Store listener: remember the latest change of a mapped parameter and wake the sender."""
        if change.name in self._bindings:
            with self._lock:
                self._pending[change.name] = change
            self._thread.wake()

    def _push(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for change in pending.values():
            for binding in self._bindings.get(change.name, ()):
                if binding.source != change.source or change.adjusted or binding.mapping.relative:
                    self._emit(binding, change.value)

    def _emit(self, binding: Binding, value: object) -> None:
        for message in binding.feedback(value):
            failed = self._send(message)
            self._faults["send_failed"] += failed
            self.sent += 1
