"""A looper for latent trajectories: record what the encoder hears, play it into decode, overdub.

The performer's view, through three parameters (OSC, MIDI, CV like any other):

- `latent/loop/record` on records the live latent from the loop's start; off
  closes the loop at the length recorded. At `latent/loop/seconds` the loop
  closes by itself (the buffer is full) and later frames are not recorded.
- `latent/loop/play` on plays the loop from its start, cycling, in place of
  the live latent; bias, scale, noise, freeze and replace still act on it.
  With nothing recorded the live latent plays.
- record while playing overdubs: the loop keeps its length and each frame
  that plays becomes `(1 - a) * loop + a * live`, a = `latent/loop/overdub`.
- `latent/loop/start` and `latent/loop/end` (fractions of the loop, 0..1)
  are the loop points: play cycles through that span only.
- `offer(frames)` makes a whole sequence the loop (a generated piece that
  `/ravelive/latent/play NAME` loads), replacing any recording.

The encoder's own latents are recorded (before the transform), so a loop
can be reshaped as it plays. `LoopControl` is the immutable per-block
snapshot; `LatentLooper` is the state the engine's latent processor keeps
(the buffer, allocated when the length changes, and the two cursors). The
loop lives as long as the engine: a model swap starts a new, empty one.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoopControl:
    """The loop's controls for one block."""

    record: bool = False
    play: bool = False
    overdub: float = 0.5  # share of the live latent mixed into each frame overdubbed
    frames: int = 0  # the longest loop, in latent frames (latent/loop/seconds at the latent rate)
    start: float = 0.0  # loop points, as fractions of the loop's length
    end: float = 1.0

    @property
    def active(self) -> bool:
        return self.record or self.play


class LatentLooper:
    """The loop buffer and cursors; `__call__` turns live frames into the frames decode gets."""

    def __init__(self, dims: int) -> None:
        self._buffer = np.zeros((dims, 0), dtype=np.float32)
        self.length = 0  # frames of a closed loop (0: nothing to play)
        self._recorded = 0  # frames recorded into an open loop
        self._recording = False  # a fresh recording (not an overdub) is open
        self._playing = False
        self._record_asked = False  # control.record in the previous block: a recording starts on its rising edge
        self._read = 0  # next frame of the loop to play
        self._offered: np.ndarray | None = None  # the last sequence offered (loaded once)

    def offer(self, frames: np.ndarray | None) -> None:
        """Make `frames` [dims, n] the loop if it is not the one last offered (the engine offers every block)."""
        if frames is None or frames is self._offered:
            return
        self._offered = frames
        self._buffer = np.array(frames, dtype=np.float32, copy=True)
        self.length, self._recording, self._read = self._buffer.shape[1], False, 0

    def __call__(self, control: LoopControl, live: np.ndarray) -> np.ndarray:
        """Live frames [dims, n] (float32) -> the frames to decode; `live` itself when the loop is silent."""
        self._follow(control)
        if self._recording:
            self._record(live)
        if not (self._playing and self.length):
            return live
        first, last = self._span(control)
        played = np.empty_like(live)
        for t in range(live.shape[1]):
            if not first <= self._read < last:
                self._read = first
            frame = self._buffer[:, self._read]
            if control.record:  # overdub: the blend plays and stays in the loop
                frame *= 1.0 - control.overdub
                frame += control.overdub * live[:, t]
            played[:, t] = frame
            self._read += 1
        return played

    def _span(self, control: LoopControl) -> tuple[int, int]:
        """The frames [first, last) the loop points select: at least one frame."""
        first = min(int(control.start * self.length), self.length - 1)
        return first, max(first + 1, min(self.length, round(control.end * self.length)))

    def _follow(self, control: LoopControl) -> None:
        """Start, close or restart on the edges of record and play."""
        if control.play and not self._playing:
            self._read = self._span(control)[0] if self.length else 0
        self._playing = control.play
        rising, self._record_asked = control.record and not self._record_asked, control.record
        if rising and not (control.play and self.length):  # a new loop (else: an overdub of the playing one)
            if self._buffer.shape[1] != control.frames:
                self._buffer = np.zeros((self._buffer.shape[0], control.frames), dtype=np.float32)
            self._recording, self._recorded, self.length, self._read = True, 0, 0, 0
        elif self._recording and not control.record:
            self._close()

    def _record(self, live: np.ndarray) -> None:
        taken = min(self._buffer.shape[1] - self._recorded, live.shape[1])
        self._buffer[:, self._recorded : self._recorded + taken] = live[:, :taken]
        self._recorded += taken
        if self._recorded == self._buffer.shape[1]:  # full: the loop closes though record is still on
            self._close()

    def _close(self) -> None:
        self._recording = False
        self.length = self._recorded
        self._read = 0
