"""A DC blocker: a one-pole high-pass per channel, state kept across blocks.

A model can put a constant offset on its output; held DC wastes the DAC's
headroom and thumps speakers when it starts or stops. The DC blocker is the
classic y[n] = x[n] - x[n-1] + R y[n-1] with its -3 dB corner at `cutoff` Hz
(5 Hz by default: flat within 0.1 dB above 40 Hz, a step's offset halves in
~22 ms). It has no delay: an impulse comes out at once, followed by a small
negative tail. The recursion runs in double precision, so any chunking gives
the one-shot result exactly.

It runs in C (ravelive/engine/native/rtdcblock.c), one sample at a time: the
audio callback runs it on each period before the output gain, on the model's
output and on a late block's fallback alike. This module owns the design (the
pole) and `DCBlocker`, the same C code on numpy arrays.
"""

import math

import numpy as np

CUTOFF_HZ = 5.0  # -3 dB corner: below any musical fundamental, fast enough to remove an offset within ~0.1 s


def pole(sample_rate: int, cutoff: float = CUTOFF_HZ) -> float:
    """R = exp(-2 pi cutoff / rate); ValueError for a cutoff outside (0, Nyquist)."""
    if not 0 < cutoff < sample_rate / 2:
        raise ValueError(f"DC blocker cutoff {cutoff} Hz must lie in (0, {sample_rate / 2:g}) Hz")
    return math.exp(-2 * math.pi * cutoff / sample_rate)


def configure(blocker, ffi, channels: int, audio_channels: int, sample_rate: int,
              cutoff: float = CUTOFF_HZ) -> list[np.ndarray]:
    """Fill a `struct rl_dc_blocker *` for a stream (silence before it); returns the arrays its pointers refer
    to (keep them alive). The first `audio_channels` of `channels` are filtered, the rest pass."""
    blocker.channels, blocker.audio_channels, blocker.pole = channels, audio_channels, pole(sample_rate, cutoff)
    x, y = np.zeros(audio_channels), np.zeros(audio_channels)
    blocker.x, blocker.y = (ffi.cast("double *", ffi.from_buffer(a)) for a in (x, y))
    return [x, y]


class DCBlocker:
    """The callback's DC blocker on float32 `[channels, n]` blocks, streaming; `delay` is 0."""

    delay = 0

    def __init__(self, channels: int, sample_rate: int, cutoff: float = CUTOFF_HZ) -> None:
        from ravelive.engine import native  # the C library: loaded (or built) on first use

        self._ffi, self._lib = native.load()
        self._state = self._ffi.new("struct rl_dc_blocker *")
        self._keep = configure(self._state, self._ffi, channels, channels, sample_rate, cutoff)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter x `[channels, n]`; returns a new float32 array of the same shape."""
        frames = np.ascontiguousarray(x.T, dtype=np.float32)  # interleaved, as the callback's periods
        if frames.size:
            self._lib.rl_dc_block(self._state, self._ffi.cast("float *", self._ffi.from_buffer(frames)),
                                  frames.shape[0])
        return np.ascontiguousarray(frames.T)
