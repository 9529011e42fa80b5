"""A low-delay, linear-phase polyphase resampler for live use (resample quality "live").

soxr holds back ~1000 output frames per direction at 44.1 <-> 48 kHz (it
filters in FFT blocks, whatever its phase response: its minimum-phase HQ
still holds back ~1700 frames per round trip; benchmarks/resample_quality.py).
This one is a direct-form polyphase FIR: output frame n is emitted as soon
as the last input frame its filter reaches has arrived, so the only wait is
the filter's half-length, about 30 frames per direction at 44.1 <-> 48 kHz.

Design (once, at construction, numpy only). The rate pair reduces to
out/in = L/M (147/160 for 48 -> 44.1 kHz). One Kaiser-windowed sinc
prototype at the common rate in * L = out * M, cut off halfway between the
passband edge (PASSBAND x the lower rate's Nyquist: 18.08 kHz at 44.1 kHz)
and the lower Nyquist, where it reaches ATTENUATION_DB: nothing above the
lower rate's Nyquist aliases by more than that. Each of the L output phases
is normalised to unit DC gain.

Timing. The filter is linear phase and centred on each output instant:
output frame n is the band-limited input at time n / out_rate, the same
time alignment as soxr's. What waits is availability, as with soxr: after m
input frames, ceil((m * L - R) / M) outputs are out, where R is the filter's
half-length at the common rate. `latency` is the most output frames this
holds back (R / M plus under one frame), exact, computed rather than
measured. Linear phase means this delay is the same for every frequency:
an impulse peaks, and an in-band tone lands, exactly where the caller's
fixed latency puts them. (A minimum-phase version would save about one
millisecond per round trip but delay each frequency differently: not worth
an inexact latency.)

Streaming. The L x T coefficient table covers one period of L outputs,
which read T input frames (M new ones plus the filter's span). Each call
gathers the periods its available outputs fall in as strided windows of a
preallocated history buffer and runs one matrix product (BLAS) for every
channel and period. Buffers grow only when a chunk is larger than any
before; per call, only the returned array is allocated. Cost: ~19 us per
256-frame stereo chunk here, against soxr HQ's ~6 us.
"""

import math
from fractions import Fraction

import numpy as np

from ravelive.errors import ConfigError

PASSBAND = 0.82  # passband edge, fraction of the lower rate's Nyquist: 18.08 kHz at 44.1 kHz (flat to 18 kHz)
ATTENUATION_DB = 80.0  # stopband from the lower Nyquist up: aliases and images at least this far down
MAX_TABLE = 1 << 21  # coefficients (8 MiB): rate pairs with huge L/M (e.g. 44100 -> 48001) are refused
_ROUNDING = 1e-6  # added to the exact hold-back: float sums of frame counts stay below it
_INITIAL_FRAMES = 4096  # history buffer room for input chunks before it first grows


def design(in_rate: int, out_rate: int) -> tuple[int, int, int, int, np.ndarray]:
    """(L, M, R, r_lo, table [L, T]): table[j, t] weighs input q*M + r_lo + t for output q*L + j."""
    common = math.gcd(in_rate, out_rate)
    up, down = out_rate // common, in_rate // common
    rate = in_rate * up  # the common rate of the prototype
    nyquist = min(in_rate, out_rate) / 2
    passband = PASSBAND * nyquist
    cutoff = (passband + nyquist) / 2
    transition = 2 * np.pi * (nyquist - passband) / rate
    taps = math.ceil((ATTENUATION_DB - 7.95) / (2.285 * transition)) + 1  # Kaiser's estimate
    half = taps // 2 + 1  # R: offsets -R..R at the common rate
    r_lo = -(half // up)
    r_hi = ((up - 1) * down + half) // up
    width = r_hi - r_lo + 1
    if up * width > MAX_TABLE:
        raise ConfigError(
            f"resample quality 'live' cannot convert {in_rate} Hz -> {out_rate} Hz: the ratio {up}/{down} needs "
            f"{up * width} filter coefficients (at most {MAX_TABLE}); use --resample-quality HQ for this pair"
        )
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    j = np.arange(up)[:, None]
    r = np.arange(r_lo, r_hi + 1)[None, :]
    offset = (j * down - r * up).astype(np.float64)  # output time minus input time, in common-rate samples
    inside = np.abs(offset) <= half
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (offset / half) ** 2, 0.0, None))) / np.i0(beta)
    table = np.where(inside, np.sinc(2 * cutoff * offset / rate) * window, 0.0)
    table /= table.sum(axis=1, keepdims=True)  # each phase passes DC exactly
    return up, down, half, r_lo, table


class PolyphaseResampler:
    """Resamples a [channels, n] float32 stream chunk by chunk with a fixed, exact `latency`; see the module."""

    def __init__(self, in_rate: int, out_rate: int, channels: int) -> None:
        self.in_rate, self.out_rate, self.channels = in_rate, out_rate, channels
        self._up, self._down, self._half, self._r_lo, table = design(in_rate, out_rate)
        self._width = table.shape[1]
        self._columns = np.ascontiguousarray(table.T, dtype=np.float32)  # [T, L]: windows @ columns
        self._pad = self._width + self._down  # zeroed room after the input: the last period's window reads it
        self.latency = self._held_back()
        self._empty = np.zeros((channels, 0), dtype=np.float32)
        self._history = np.zeros((channels, 0), dtype=np.float32)
        self._windows = self._work = self._empty
        self._reserve_history(_INITIAL_FRAMES)
        self._reserve_products(_INITIAL_FRAMES)
        self.reset()

    def reset(self) -> None:
        """Forget all input: the next chunk starts a new stream (silence before it)."""
        self._history[:] = 0.0
        self._origin = self._r_lo  # input index of history column 0
        self._written = -self._r_lo  # columns filled: the zeros before input 0
        self._received = 0
        self._next = 0  # next output index

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed x [channels, n]; return every output frame that became available, [channels, m]."""
        frames = x.shape[1]
        self._make_room(frames)
        written = self._written
        self._history[:, written : written + frames] = x
        self._history[:, written + frames : written + frames + self._pad] = 0.0
        self._written = written + frames
        self._received += frames
        end = self._available(self._received)
        if end <= self._next:
            return self._empty
        up, down = self._up, self._down
        first, last = self._next // up, (end - 1) // up
        periods = last - first + 1
        column = first * down + self._r_lo - self._origin
        if periods * self._width * self.channels > self._windows.size:  # a chunk larger than any before
            self._reserve_products(frames)
        history = self._history
        # The periods' input windows, M frames apart and overlapping: a strided view of the history, copied
        # into a contiguous block so that the product is one BLAS call for every channel and period.
        source = np.ndarray((self.channels, periods, self._width), np.float32, buffer=history,
                            offset=column * history.itemsize,
                            strides=(history.strides[0], down * history.itemsize, history.itemsize))
        rows = self.channels * periods
        windows = self._windows[: rows * self._width].reshape(self.channels, periods, self._width)
        np.copyto(windows, source)
        work = self._work[: rows * up].reshape(rows, up)
        np.matmul(windows.reshape(rows, self._width), self._columns, out=work)
        start, stop = self._next - first * up, end - first * up
        self._next = end
        return work.reshape(self.channels, periods * up)[:, start:stop].copy()

    def inputs_for(self, outputs: int) -> int:
        """Input frames still to feed before `outputs` more output frames are out (at least 1).

        The inverse of `_available`: the smallest m with ceil((m * L - R) / M) >= target is
        ceil(((target - 1) * M + R + 1) / L).
        """
        target = self._next + outputs
        needed = -(-((target - 1) * self._down + self._half + 1) // self._up)
        return max(1, needed - self._received)

    # ---- bookkeeping ----

    def _available(self, received: int) -> int:
        """Outputs whose whole filter span lies within the first `received` inputs."""
        return max(0, -((self._half - received * self._up) // self._down))

    def _held_back(self) -> float:
        """The most output frames ever held back: the deficit m * L / M - available(m) peaks once per period.

        Exact (fractions), then nudged up by _ROUNDING so that callers' float arithmetic never lands below it.
        """
        horizon = self._half // self._up + 2 * self._down + 2
        peak = max(Fraction(m * self._up, self._down) - self._available(m) for m in range(horizon))
        return float(peak) + _ROUNDING

    def _make_room(self, frames: int) -> None:
        """Room for `frames` more inputs and the zero pad: drop history no output needs, grow if still short."""
        needed = self._written + frames + self._pad
        if needed <= self._history.shape[1]:
            return
        keep_from = (self._next // self._up) * self._down + self._r_lo - self._origin
        kept = self._written - keep_from
        self._history[:, :kept] = self._history[:, keep_from : self._written].copy()
        self._origin += keep_from
        self._written = kept
        if kept + frames + self._pad > self._history.shape[1]:
            self._reserve_history(frames)

    def _reserve_history(self, frames: int) -> None:
        """Grow the history buffer for chunks of up to `frames` inputs, keeping what it holds."""
        history = np.zeros((self.channels, 2 * (frames + self._width + self._pad)), dtype=np.float32)
        history[:, : self._history.shape[1]] = self._history
        self._history = history

    def _reserve_products(self, frames: int) -> None:
        """Size the window and product buffers for the periods a chunk of `frames` inputs can complete."""
        periods = (frames + self._width) // self._down + 2  # periods one chunk can complete, and then some
        self._windows = np.empty(self.channels * periods * self._width, dtype=np.float32)
        self._work = np.empty(self.channels * periods * self._up, dtype=np.float32)
