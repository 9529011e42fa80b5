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

    def __call__(self, control: LoopControl, live: np.ndarray) -> np.ndarray:
        """Live frames [dims, n] (float32) -> the frames to decode; `live` itself when the loop is silent."""
        self._follow(control)
        if self._recording:
            self._record(live)
        if not (self._playing and self.length):
            return live
        played = np.empty_like(live)
        for t in range(live.shape[1]):
            frame = self._buffer[:, self._read]
            if control.record:  # overdub: the blend plays and stays in the loop
                frame *= 1.0 - control.overdub
                frame += control.overdub * live[:, t]
            played[:, t] = frame
            self._read = (self._read + 1) % self.length
        return played

    def _follow(self, control: LoopControl) -> None:
        """Start, close or restart on the edges of record and play."""
        if control.play and not self._playing:
            self._read = 0
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
