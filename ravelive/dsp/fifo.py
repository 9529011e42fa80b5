"""A preallocated multichannel FIFO (ring buffer) for audio frames.

`AudioFifo` holds float32 audio as [channels, capacity] and moves it with
at most two slice copies per call, so steady-state streaming allocates
nothing. Writing more than the free space is a programming error
(ValueError); `reserve` grows the buffer explicitly, outside the hot path.
"""

import numpy as np


class AudioFifo:
    """First-in first-out audio frames, [channels, n] in and out, in a fixed ring."""

    def __init__(self, channels: int, capacity: int) -> None:
        if channels < 1 or capacity < 1:
            raise ValueError(f"AudioFifo needs channels >= 1 and capacity >= 1, got {channels} and {capacity}")
        self._data = np.zeros((channels, capacity), dtype=np.float32)
        self._read = 0  # index of the oldest frame
        self._count = 0  # frames held

    @property
    def channels(self) -> int:
        return self._data.shape[0]

    @property
    def capacity(self) -> int:
        return self._data.shape[1]

    @property
    def available(self) -> int:
        """Frames that can be read now."""
        return self._count

    @property
    def space(self) -> int:
        """Frames that can be written now."""
        return self.capacity - self._count

    def reserve(self, capacity: int) -> None:
        """Grow to hold at least `capacity` frames, keeping the content (allocates; never shrinks)."""
        if capacity <= self.capacity:
            return
        grown = np.zeros((self.channels, max(capacity, 2 * self.capacity)), dtype=np.float32)
        count = self._count
        self.read(count, out=grown[:, :count])
        self._data, self._read, self._count = grown, 0, count

    def write(self, x: np.ndarray) -> None:
        """Append x [channels, n]; ValueError when n exceeds `space`."""
        n = x.shape[1]
        if n > self.space:
            raise ValueError(f"AudioFifo overflow: {n} frames written, {self.space} free of {self.capacity}")
        start = (self._read + self._count) % self.capacity
        first = min(n, self.capacity - start)
        self._data[:, start : start + first] = x[:, :first]
        self._data[:, : n - first] = x[:, first:]
        self._count += n

    def read(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Remove the oldest n frames into `out` ([channels, n], allocated when None) and return it."""
        if n > self._count:
            raise ValueError(f"AudioFifo underflow: {n} frames read, {self._count} held")
        if out is None:
            out = np.empty((self.channels, n), dtype=np.float32)
        first = min(n, self.capacity - self._read)
        out[:, :first] = self._data[:, self._read : self._read + first]
        out[:, first:n] = self._data[:, : n - first]
        self._read = (self._read + n) % self.capacity
        self._count -= n
        return out

    def clear(self) -> None:
        """Drop everything held (no allocation)."""
        self._read = 0
        self._count = 0
