"""Gains that glide instead of jumping, so control changes make no zipper noise.

A control value changes at most once per block; applying it as a step would
click. `GainRamp` turns each new target into a linear ramp of fixed length
(which may span several blocks) and multiplies audio by it; `WetDryMix` uses
one to crossfade between a processed and a dry signal. Both work in place on
float32 `[channels, n]` arrays and allocate only when a block is longer than
any before.
"""

import math

import numpy as np

SILENCE_DB = -60.0  # a gain at or below this many dB is treated as silence (0.0), so faders can mute


def db_to_gain(db: float) -> float:
    """Linear gain for `db` decibels; 0.0 at or below SILENCE_DB."""
    return 0.0 if db <= SILENCE_DB else math.pow(10.0, db / 20.0)


class GainRamp:
    """A gain that reaches each new target linearly over `ramp` samples."""

    def __init__(self, ramp: int, initial: float = 1.0) -> None:
        if ramp < 1:
            raise ValueError(f"ramp of {ramp} samples: give at least 1")
        self.ramp = ramp
        self._gains = np.empty(0, dtype=np.float32)
        self._steps = np.empty(0, dtype=np.float64)
        self.reset(initial)

    @property
    def value(self) -> float:
        """The gain applied to the last sample so far."""
        return self._current

    def reset(self, value: float) -> None:
        """Jump to `value` with no ramp (before a stream starts)."""
        self._current = self._target = float(value)
        self._step = 0.0
        self._remaining = 0

    def gains(self, target: float, n: int) -> np.ndarray | float:
        """The gain for each of the next `n` samples, or one float when it is constant.

        The returned array is reused by the next call: use it before then.
        """
        target = float(target)
        if target != self._target:
            self._target = target
            self._remaining = self.ramp
            self._step = (target - self._current) / self.ramp
        if self._remaining == 0:
            return self._current
        if n > self._gains.shape[0]:
            self._gains = np.empty(n, dtype=np.float32)
            self._steps = np.arange(1, n + 1, dtype=np.float64)
        ramping = min(n, self._remaining)
        gains = self._gains[:n]
        gains[:ramping] = self._current + self._step * self._steps[:ramping]
        gains[ramping:] = self._target
        self._remaining -= ramping
        self._current = self._target if self._remaining == 0 else float(gains[ramping - 1])
        return gains

    def apply(self, block: np.ndarray, target: float) -> np.ndarray:
        """Multiply `block` `[channels, n]` in place by the gliding gain and return it."""
        gains = self.gains(target, block.shape[-1])
        if not (isinstance(gains, float) and gains == 1.0):
            block *= gains
        return block


class WetDryMix:
    """Crossfade between a processed (wet) and an unprocessed (dry) signal, gliding on changes."""

    def __init__(self, ramp: int, initial_wet: float = 1.0) -> None:
        self._wet = GainRamp(ramp, initial_wet)

    def reset(self, wet: float) -> None:
        """Jump to the wet amount `wet` (0 = dry only, 1 = wet only)."""
        self._wet.reset(wet)

    def apply(self, wet: np.ndarray, dry: np.ndarray, target_wet: float) -> np.ndarray:
        """Write `dry + (wet - dry) * amount` into `wet` and return it; shapes must match."""
        amount = self._wet.gains(target_wet, wet.shape[-1])
        if isinstance(amount, float) and amount in (0.0, 1.0):
            if amount == 0.0:
                wet[...] = dry
            return wet
        wet -= dry
        wet *= amount
        wet += dry
        return wet
