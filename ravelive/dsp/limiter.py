"""A true-peak safety limiter with lookahead: the output never exceeds the ceiling, between samples too.

A DAC reconstructs the band-limited signal between the samples, and that
signal can peak above every sample (a full-scale square overshoots by
~2 dB). `TruePeakLimiter` estimates the peak of each sample interval by
4x oversampling (a 16-tap Kaiser-windowed sinc per phase, the approach of
ITU-R BS.1770's true-peak meter), and plays the input through a gain that
keeps that estimate under the ceiling:

    interval peak e[t]   max |x| over [t, t+1]: both samples and the 3 points between
    required     q[t]    min(1, ceiling / max(e[t-1], e[t]))   (a sample bounds both its intervals)
    lookahead    m[t]    min q[t .. t+L-1]
    release      r[t]    1 - max(1 - m[t], beta * (1 - r[t-1]))   (the reduction decays, ~release_ms)
    smoothing    g[t]    mean r[t-L+1 .. t]: a linear ramp over L samples ends at each peak
    output       y[t+D]  g[t] * x[t],   D = L - 1 + K (lookahead + the interpolator's half length)

Each g[t] is a mean of values that are each at most q[t] (every window
[k, k+L-1] with k in [t-L+1, t] contains t), so the gain at a peak is never
above what the peak needs: the attack is complete when the peak plays, and
the gain moves smoothly (linear attack over L, exponential release). The
gain is shared by all channels (the stereo image stays put) and is exactly
1.0 while nothing needs limiting, so small signals come out unchanged,
delayed by exactly `delay` samples.

4x oversampling underestimates a peak by up to cos(pi f / 4 fs) (0.5 dB for
a 20 kHz sine at 48 kHz); DETECTOR_HEADROOM covers that, so a true peak
measured at 8x or 16x stays under the ceiling too for content up to 20 kHz
(sines, squares, band-limited noise: tests/dsp/test_limiter.py). Like
BS.1770's meter, the short interpolator does not see content near Nyquist
well: loud full-band white noise can still peak up to ~1 dB over the
ceiling between samples (every sample itself stays under it).

Output `delay` samples late, as many samples out as in (zeros first). State
is a few arrays allocated once; a block costs a few numpy calls when nothing
is limited, a few more when something is. Streaming in any chunk sizes
equals one-shot processing to float64 rounding.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CEILING_DBTP = -1.0  # the usual safety ceiling: leaves room for lossy codecs and DAC reconstruction filters
LOOKAHEAD_SECONDS = 0.0015  # attack ramp: 1.5 ms is inaudible as a click, short enough to add little latency
RELEASE_SECONDS = 0.06  # time constant of the gain recovery: no pumping on single peaks, no audible distortion
OVERSAMPLING = 4  # true-peak points per sample interval (BS.1770's meter uses 4 at 48 kHz)
HALF_TAPS = 8  # interpolator taps each side of the point: 16 per phase
KAISER_BETA = 8.0  # interpolator window: > 80 dB sidelobes, passband flat to ~0.8 x Nyquist
DETECTOR_HEADROOM = 10 ** (0.6 / 20)  # estimates are raised 0.6 dB: covers 4x's worst case (cos(pi/8) ~ -0.7 dB at Nyquist)
RELEASE_FLOOR = 1e-6  # a reduction this small (-0.00001 dB) ends the release: unity is exact, not asymptotic
RELEASE_SEGMENT = 8192  # longest stretch of the release recursion solved in one go (beta^-k stays small)


def interpolator(oversampling: int = OVERSAMPLING, half_taps: int = HALF_TAPS, beta: float = KAISER_BETA) -> np.ndarray:
    """FIR taps `[2 * half_taps, oversampling - 1]`: column p-1 interpolates the point p / oversampling
    after sample t from x[t - half_taps + 1 .. t + half_taps]."""
    offsets = np.arange(-half_taps + 1, half_taps + 1, dtype=np.float64)  # sample j relative to t
    phases = np.arange(1, oversampling) / oversampling
    distance = phases[None, :] - offsets[:, None]  # from each sample to each point, in samples
    window = np.kaiser(2 * half_taps + 1, beta)  # sampled on [-half_taps, half_taps] ...
    grid = np.linspace(-half_taps, half_taps, 2 * half_taps + 1)
    taps = np.sinc(distance) * np.interp(distance, grid, window)  # ... and read at each distance
    return taps / taps.sum(axis=0, keepdims=True)  # unity gain at DC for every phase


def running_min(x: np.ndarray, width: int) -> np.ndarray:
    """min(x[i : i + width]) for every i in [0, len(x) - width], in O(len(x)) (van Herk / Gil-Werman).

    Cut into segments of `width`: a window spans the end of one and the start of the next, so its minimum
    is that of the first's suffix minimum and the second's prefix minimum, each one accumulate over the
    whole array (a strided min over every window costs `width` times more: 2/3 of the limiter's time).
    """
    count = len(x) - width + 1
    segments = -(-len(x) // width)
    padded = np.full(segments * width, np.inf)
    padded[: len(x)] = x
    rows = padded.reshape(segments, width)
    prefix = np.minimum.accumulate(rows, axis=1).ravel()
    suffix = np.minimum.accumulate(rows[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:count], prefix[width - 1 : width - 1 + count])


class TruePeakLimiter:
    """Lookahead limiter on float32 `[channels, n]`; see the module docstring."""

    def __init__(self, channels: int, sample_rate: int, ceiling_db: float = CEILING_DBTP,
                 lookahead: float = LOOKAHEAD_SECONDS, release: float = RELEASE_SECONDS) -> None:
        if ceiling_db > 0:
            raise ValueError(f"limiter ceiling {ceiling_db} dBTP is above full scale; give 0 or less (e.g. -1)")
        self.channels = channels
        self.ceiling = 10 ** (ceiling_db / 20)
        self.lookahead = max(1, round(lookahead * sample_rate))  # L
        self.delay = self.lookahead - 1 + HALF_TAPS  # D
        self._beta = math.exp(-1.0 / (release * sample_rate))
        self._taps = np.ascontiguousarray(interpolator().T)  # [phases, taps]: the points come out [phases, n]
        # Below this sample peak no point between samples can reach the ceiling (each interpolated point is at
        # most the sum of its taps' magnitudes times the largest sample): such blocks skip the detector.
        self._safe_peak = self.ceiling / (DETECTOR_HEADROOM * np.abs(self._taps).sum(axis=1).max())
        self._unity = True  # the last L-1 gains are all exactly 1.0 and nothing is being released
        self._gain = 1.0
        self._history = 2 * HALF_TAPS + self.lookahead - 1  # raw input kept from the previous push (H = D + K)
        self._x = np.zeros((channels, self._history), dtype=np.float64)
        self._smoothing = np.ones(self.lookahead - 1)  # r of the last L-1 positions, for the mean
        self._reduction = 0.0  # 1 - r of the last position: where the release continues from
        k = np.arange(RELEASE_SEGMENT, dtype=np.float64)
        self._decay, self._growth = self._beta ** k, self._beta ** -k

    @property
    def gain(self) -> float:
        """The gain on the last sample output (1.0: not limiting)."""
        return self._gain

    def reset(self) -> None:
        """Forget the past (silence before the next block)."""
        self._x.fill(0.0)
        self._smoothing.fill(1.0)
        self._reduction = 0.0
        self._unity = True
        self._gain = 1.0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Limit x `[channels, n]`; returns a new float32 `[channels, n]`: input t comes out at t + delay."""
        n = x.shape[1]
        if n == 0:
            return np.zeros_like(x, dtype=np.float32)
        xs = np.concatenate([self._x, x], axis=1)  # positions -H .. n-1 relative to this push; float64
        self._x = xs[:, -self._history:]
        due = xs[:, self._history - self.delay : self._history - self.delay + n]  # x[t] for the n outputs due
        if self._unity and max(xs.max(), -xs.min()) <= self._safe_peak:
            self._gain = 1.0
            return due.astype(np.float32)  # the common case: a few calls, and exactly the input
        required = self._required(xs)  # q for the n + L - 1 positions whose output is due or needed ahead
        reduction = 1.0 - self._lookahead_min(required)  # 1 - m for the n positions due now
        if self._reduction == 0.0 and not reduction.any():
            fresh = np.ones(n)  # nothing to limit and nothing to release from: exactly unity
        else:
            fresh = 1.0 - self._release(reduction)
        gains = np.concatenate([self._smoothing, fresh])
        self._reduction = 1.0 - gains[-1]
        self._smoothing = gains[n:]  # the last L-1 values of r
        self._unity = bool((gains == 1.0).all())
        if self._unity:
            self._gain = 1.0
            return due.astype(np.float32)
        sums = np.cumsum(np.concatenate([[0.0], gains]))
        smooth = (sums[self.lookahead :] - sums[:-self.lookahead]) / self.lookahead
        self._gain = float(smooth[-1])
        return (due * smooth).astype(np.float32)

    def _required(self, xs: np.ndarray) -> np.ndarray:
        """q[t] = min(1, ceiling / true peak around t) for the last n + L - 1 computable positions."""
        # xs index i holds x at i - H. Outputs due: t = i - H for i in [H - D, H - D + n); q is needed from
        # the first of them to L - 1 beyond the last, and q[t] needs x[t - K .. t + K] (both intervals).
        k = HALF_TAPS
        first, last = self._history - self.delay, xs.shape[1] - k  # i range of q, last exclusive
        window = sliding_window_view(xs[:, first - k : last + k], 2 * k, axis=1)  # rows start at i - K + 1 - 1
        # interval peak inside (t-1, t) and (t, t+1) below; the points as [channels, phases, n], so the max is
        # over a short outer axis (over the innermost one it costs three times more)
        between = np.abs(self._taps @ np.swapaxes(window, 1, 2)).max(axis=1)
        samples = np.abs(xs[:, first - 1 : last + 1])
        interval = np.maximum(np.maximum(samples[:, :-1], samples[:, 1:]), between)  # e over [t-1, t+1)
        peak = np.maximum(interval[:, :-1], interval[:, 1:]).max(axis=0) * DETECTOR_HEADROOM
        with np.errstate(divide="ignore"):
            return np.minimum(1.0, self.ceiling / peak)

    def _lookahead_min(self, required: np.ndarray) -> np.ndarray:
        if required.min() >= 1.0:
            return np.ones(required.shape[0] - self.lookahead + 1)
        return running_min(required, self.lookahead)

    def _release(self, reduction: np.ndarray) -> np.ndarray:
        """u[t] = max(a[t], beta u[t-1]) from the stored u, solved as beta^k * running max(a[j] beta^-j)."""
        out = np.empty_like(reduction)
        previous = self._reduction
        for start in range(0, reduction.shape[0], RELEASE_SEGMENT):
            a = reduction[start : start + RELEASE_SEGMENT]
            m = a.shape[0]
            held = np.maximum.accumulate(np.maximum(a * self._growth[:m], self._beta * previous))
            decayed = held * self._decay[:m]
            decayed[decayed < RELEASE_FLOOR] = 0.0  # released: the gain is exactly 1.0 again
            out[start : start + m] = decayed
            previous = decayed[-1]
        return out
