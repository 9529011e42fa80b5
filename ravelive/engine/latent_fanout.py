"""One latent sink for the engines, several listeners: OSC's `/ravelive/latent/out` and the CV outputs.

The swapper hands one sink to every engine (`ModelSwapper.set_latent_sink`),
and a set sink makes `forward` run as encode -> transform -> decode, so the
server gives the engines this fan-out only while some listener is attached,
and None otherwise.
"""

import numpy as np

from ravelive.engine.stream import LatentSink


class LatentFanout:
    """A LatentSink calling each attached listener in turn (on the worker; none may block)."""

    def __init__(self) -> None:
        self._listeners: dict[str, LatentSink] = {}
        self._calls: tuple[LatentSink, ...] = ()

    def attach(self, name: str, listener: LatentSink | None) -> None:
        """Listen as `name` (replacing an earlier listener of that name); None detaches it."""
        listeners = dict(self._listeners)
        if listener is None:
            listeners.pop(name, None)
        else:
            listeners[name] = listener
        self._listeners = listeners
        self._calls = tuple(listeners.values())  # swapped whole: the worker reads it once per call

    @property
    def active(self) -> bool:
        return bool(self._calls)

    def __call__(self, frames: np.ndarray) -> None:
        for listener in self._calls:
            listener(frames)
