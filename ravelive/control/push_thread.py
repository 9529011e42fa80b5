"""The thread behind OSC and MIDI feedback: it sleeps until woken, pushes, and rests one period.

Whatever is queued while it pushes or rests coalesces into the next round,
so no round comes sooner than 1/`rate` s after the last one, the last value
always goes out, and an idle daemon has no wake-ups costing CPU beside the
model.
"""

import collections
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PushThread:
    """Runs `push` on its own daemon thread after each `wake()`, at most `rate` times a second."""

    def __init__(self, name: str, push: Callable[[], None], faults: collections.Counter, rate: float) -> None:
        self._push = push
        self._faults = faults
        self._period = 1.0 / rate
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something waits to be pushed (any thread; never blocks for long)."""
        self._wake.set()

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        while self._wake.wait() and not self._stopping.is_set():
            self._wake.clear()  # before pushing: whatever comes while it runs wakes the next round
            try:
                self._push()
            except Exception:  # the boundary: a bad value must not end feedback for every client
                self._faults["internal"] += 1
                logger.exception("%s failed", self._thread.name)
            if self._stopping.wait(self._period):
                return
