"""Preallocated multichannel rings for audio frames: the one ring implementation of the package.

`Ring` is frames-major float32 storage ([frames, channels], C-contiguous) addressed by absolute frame
positions, moved with at most two slice copies. The realtime path's input and output rings and the
recorder's ring are Rings whose storage the C callback (ravelive/engine/native/rtcallback.c) reads and
writes in the same layout, with the positions it shares with Python.

`AudioFifo` is a first-in first-out queue on a Ring, [channels, n] in and out (the dry FIFO of the
server's processor, the engine's ready buffer). Writing more than the free space is a programming
error (ValueError); `reserve` grows the buffer explicitly, outside the hot path.
"""

import numpy as np


class Ring:
    """Frames-major ring addressed by absolute frame positions (one writer, one reader, any positions)."""

    def __init__(self, frames: int, channels: int) -> None:
        if frames < 1 or channels < 1:
            raise ValueError(f"Ring needs frames >= 1 and channels >= 1, got {frames} and {channels}")
        self.data = np.empty((frames, channels), dtype=np.float32)
        self.data.fill(0.0)  # written, not calloc'd: resident before the audio thread touches it (no page fault there)
        self.frames = frames

    @property
    def channels(self) -> int:
        return self.data.shape[1]

    def views(self, position: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The storage of frames [position, position + n) as two views, in order (the second may be empty)."""
        start = position % self.frames
        first = min(n, self.frames - start)
        return self.data[start : start + first], self.data[: n - first]

    def write(self, position: int, source: np.ndarray) -> None:
        """Copy `source` [n, ch] to frames [position, position + n)."""
        first, second = self.views(position, len(source))
        first[:] = source[: len(first)]
        second[:] = source[len(first) :]

    def read(self, position: int, target: np.ndarray) -> np.ndarray:
        """Copy frames [position, position + len(target)) into `target` [n, ch]; returns `target`."""
        first, second = self.views(position, len(target))
        target[: len(first)] = first
        target[len(first) :] = second
        return target


class AudioFifo:
    """First-in first-out audio frames, [channels, n] in and out, in a fixed Ring."""

    def __init__(self, channels: int, capacity: int) -> None:
        if channels < 1 or capacity < 1:
            raise ValueError(f"AudioFifo needs channels >= 1 and capacity >= 1, got {channels} and {capacity}")
        self._ring = Ring(capacity, channels)
        self._read = 0  # absolute position of the oldest frame
        self._count = 0  # frames held

    @property
    def channels(self) -> int:
        return self._ring.channels

    @property
    def capacity(self) -> int:
        return self._ring.frames

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
        grown = Ring(max(capacity, 2 * self.capacity), self.channels)
        self._ring.read(self._read, grown.data[: self._count])
        self._ring, self._read = grown, 0

    def write(self, x: np.ndarray) -> None:
        """Append x [channels, n]; ValueError when n exceeds `space`."""
        n = x.shape[1]
        if n > self.space:
            raise ValueError(f"AudioFifo overflow: {n} frames written, {self.space} free of {self.capacity}")
        self._ring.write(self._read + self._count, x.T)
        self._count += n

    def read(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Remove the oldest n frames into `out` ([channels, n], allocated when None) and return it."""
        if n > self._count:
            raise ValueError(f"AudioFifo underflow: {n} frames read, {self._count} held")
        if out is None:
            out = np.empty((self.channels, n), dtype=np.float32)
        self._ring.read(self._read, out[:, :n].T)
        self._read = (self._read + n) % self.capacity
        self._count -= n
        return out

    def clear(self) -> None:
        """Drop everything held (no allocation)."""
        self._read = 0
        self._count = 0
