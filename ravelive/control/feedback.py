"""Subscribed OSC clients and what is pushed to them.

A client subscribes with `/ravelive/notify 1 [port]` (parameter changes) or
`/ravelive/latent/notify 1 [port]` (the latent trajectory). Parameter changes
are coalesced: one thread wakes `rate` times a second and sends the latest
value of each address that changed, so no address is pushed more often than
that, and the last value always arrives; with nothing to send it sleeps (no
idle wake-ups to cost CPU beside the model). A change is not echoed to the
client that made it unless the stored value differs from what it sent.
Latent frames come from the audio worker through a bounded deque (append
never blocks; the oldest block is dropped and counted when full). Errors the
server reports on its own (a model that output NaN) go to every subscriber
as `/ravelive/error <address> <message>`, through another bounded deque.
"""

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ravelive.control import namespace
from ravelive.control.osc_wire import build_message
from ravelive.control.params import Change
from ravelive.control.push_thread import PushThread
from ravelive.errors import ParameterError

ERROR_QUEUE = 16  # server errors waiting to be pushed; older ones are dropped (they are logged too)
LATENT_QUEUE_BLOCKS = 64  # latent blocks waiting to be sent before the oldest is dropped (counted)
Address = tuple[Any, ...]  # a socket address: (host, port) or (host, port, flow, scope)


@dataclass(frozen=True)
class Subscriber:
    target: Address  # where pushes and replies go
    parameters: bool
    latent: bool


class Feedback:
    """The subscribers of one OSC server and the thread that pushes to them."""

    def __init__(self, send: Callable[[Address, bytes], None], faults: collections.Counter,
                 rate: float, max_subscribers: int) -> None:
        self._send = send
        self._faults = faults
        self._max_subscribers = max_subscribers
        self._subscribers: dict[Address, Subscriber] = {}  # replaced whole on change; read without a lock
        self._pending: dict[str, Change] = {}
        self._pending_lock = threading.Lock()
        self._latent: collections.deque[np.ndarray] = collections.deque(maxlen=LATENT_QUEUE_BLOCKS)
        self._latent_wanted = False
        self._errors: collections.deque[bytes] = collections.deque(maxlen=ERROR_QUEUE)
        # called with True when the first client subscribes to latents, False when the last one leaves: the
        # server runs the latent path (encode -> decode in place of forward) only while someone listens
        self.on_latent_wanted: Callable[[bool], None] | None = None
        self._thread = PushThread("ravelive-osc-feedback", self._push, faults, rate)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._thread.close()

    def target(self, sender: Address) -> Address:
        """Where replies to `sender` go: its subscribed port, else where it sent from."""
        subscriber = self._subscribers.get(sender)
        return subscriber.target if subscriber is not None else sender

    def hears_parameters(self, sender: Address) -> bool:
        """Whether `sender` is subscribed to parameter changes."""
        subscriber = self._subscribers.get(sender)
        return subscriber is not None and subscriber.parameters

    def subscribe(self, sender: Address, on: bool, port: int, latent: bool) -> Address:
        """Turn parameter (or latent) pushes for `sender` on or off; returns where to confirm."""
        subscribers = dict(self._subscribers)
        current = subscribers.pop(sender, None) or Subscriber(sender, False, False)
        target = (sender[0], port, *sender[2:]) if on else current.target
        wanted = Subscriber(target, current.parameters if latent else on, on if latent else current.latent)
        # a client that reopened its socket subscribes again from a new port: forget its old entry
        subscribers = {key: other for key, other in subscribers.items() if other.target != target}
        if wanted.parameters or wanted.latent:
            if len(subscribers) >= self._max_subscribers:
                raise ParameterError(f"notify: {self._max_subscribers} clients are subscribed already; "
                                     "unsubscribe one with /ravelive/notify 0")
            subscribers[sender] = wanted
        self._subscribers = subscribers
        latent_wanted = any(s.latent for s in subscribers.values())
        if latent_wanted != self._latent_wanted:
            self._latent_wanted = latent_wanted
            if self.on_latent_wanted is not None:
                self.on_latent_wanted(latent_wanted)
        return wanted.target

    def on_change(self, change: Change) -> None:
        """Store listener: remember the latest change of each parameter until the next push."""
        with self._pending_lock:
            self._pending[change.name] = change
        self._thread.wake()

    def announce(self, message: bytes) -> None:
        """Send `message` to every client subscribed to parameter changes (a MIDI learn, say), now."""
        for subscriber in list(self._subscribers.values()):
            if subscriber.parameters:
                self._send(subscriber.target, message)

    def push_latent(self, frames: np.ndarray) -> None:
        """Queue latent frames `[dimensions, n]`; never blocks (audio worker)."""
        if not self._latent_wanted:
            return
        if len(self._latent) == self._latent.maxlen:
            self._faults["latent_dropped"] += 1
        self._latent.append(np.array(frames, dtype=np.float32, copy=True))
        self._thread.wake()

    def push_error(self, address: str, message: str) -> None:
        """Queue `/ravelive/error address message` for every subscriber; never blocks (any thread)."""
        self._errors.append(build_message(f"{namespace.ROOT}/error", [address, message]))
        self._thread.wake()

    def _push(self) -> None:
        self._push_changes()
        self._push_errors()
        self._push_latent()

    def _push_changes(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        subscribers = [(key, s) for key, s in self._subscribers.items() if s.parameters]
        if not subscribers:
            return
        for change in pending.values():
            message = build_message(namespace.parameter_address(change.name), [change.value])
            for key, subscriber in subscribers:
                if key != change.source or change.adjusted:  # the client that made the change knows it
                    self._send(subscriber.target, message)

    def _push_errors(self) -> None:
        targets = [s.target for s in self._subscribers.values()]
        while self._errors:
            message = self._errors.popleft()
            for target in targets:
                self._send(target, message)

    def _push_latent(self) -> None:
        targets = [s.target for s in self._subscribers.values() if s.latent]
        while self._latent:
            frames = self._latent.popleft()
            for column in frames.T:
                message = build_message(f"{namespace.ROOT}/latent/out", [float(v) for v in column])
                for target in targets:
                    self._send(target, message)
