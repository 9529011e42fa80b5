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

Output `delay` samples late, as many samples out as in (zeros first).
Streaming in any chunk sizes equals one-shot processing.

The limiter runs in C (ravelive/engine/native/rtlimiter.c), one sample at a
time: the audio callback runs it after the output gain, so a boost is heard
and limited in the period it is asked for, with no Python on the audio path.
This module owns the design (the constants, the interpolator) and
`TruePeakLimiter`, the same C code on numpy arrays.
"""

import math

import numpy as np

CEILING_DBTP = -1.0  # the usual safety ceiling: leaves room for lossy codecs and DAC reconstruction filters
LOOKAHEAD_SECONDS = 0.0015  # attack ramp: 1.5 ms is inaudible as a click, short enough to add little latency
RELEASE_SECONDS = 0.06  # time constant of the gain recovery: no pumping on single peaks, no audible distortion
OVERSAMPLING = 4  # true-peak points per sample interval (BS.1770's meter uses 4 at 48 kHz)
HALF_TAPS = 8  # interpolator taps each side of the point: 16 per phase
KAISER_BETA = 8.0  # interpolator window: > 80 dB sidelobes, passband flat to ~0.8 x Nyquist
DETECTOR_HEADROOM = 10 ** (0.6 / 20)  # estimates are raised 0.6 dB: covers 4x's worst case (cos(pi/8) ~ -0.7 dB at Nyquist)
RELEASE_FLOOR = 1e-6  # a reduction this small (-0.00001 dB) ends the release: unity is exact, not asymptotic


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


def lookahead_frames(sample_rate: int, lookahead: float = LOOKAHEAD_SECONDS) -> int:
    """L: the attack ramp in samples."""
    return max(1, round(lookahead * sample_rate))


def delay_at(sample_rate: int, lookahead: float = LOOKAHEAD_SECONDS) -> int:
    """D = L - 1 + K: how late the limiter's output is at this rate (79 samples at 48 kHz)."""
    return lookahead_frames(sample_rate, lookahead) - 1 + HALF_TAPS


def configure(limiter, ffi, channels: int, audio_channels: int, sample_rate: int, ceiling_db: float = CEILING_DBTP,
              lookahead: float = LOOKAHEAD_SECONDS, release: float = RELEASE_SECONDS) -> list[np.ndarray]:
    """Fill a `struct rl_limiter *` for a stream; returns the arrays its pointers refer to (keep them alive).

    All `channels` are delayed by the limiter's delay; the first `audio_channels` are detected and limited.
    """
    if ceiling_db > 0:
        raise ValueError(f"limiter ceiling {ceiling_db} dBTP is above full scale; give 0 or less (e.g. -1)")
    length, delay = lookahead_frames(sample_rate, lookahead), delay_at(sample_rate, lookahead)
    limiter.channels, limiter.audio_channels, limiter.lookahead = channels, audio_channels, length
    limiter.half_taps, limiter.phases, limiter.delay = HALF_TAPS, OVERSAMPLING - 1, delay
    limiter.history = max(delay + 1, 2 * HALF_TAPS)
    limiter.ceiling, limiter.headroom = 10 ** (ceiling_db / 20), DETECTOR_HEADROOM
    limiter.beta, limiter.floor = math.exp(-1.0 / (release * sample_rate)), RELEASE_FLOOR
    taps = np.ascontiguousarray(interpolator().T)  # [phases, 2K]
    x = np.zeros(2 * limiter.history * channels)  # the history twice over (rtlimiter.c: contiguous windows)
    q, r = np.ones(length), np.ones(length)
    limiter.taps, limiter.x, limiter.q, limiter.r = (ffi.cast("double *", ffi.from_buffer(a)) for a in (taps, x, q, r))
    limiter.n, limiter.since_limited, limiter.r_below, limiter.r_sum = 0, length, 0, float(length)
    limiter.e_last, limiter.reduction, limiter.gain = 0.0, 0.0, 1.0
    return [taps, x, q, r]


class TruePeakLimiter:
    """Lookahead limiter on float32 `[channels, n]`; see the module docstring."""

    def __init__(self, channels: int, sample_rate: int, ceiling_db: float = CEILING_DBTP,
                 lookahead: float = LOOKAHEAD_SECONDS, release: float = RELEASE_SECONDS) -> None:
        from ravelive.engine import native  # the C library: loaded (or built) on first use

        self._ffi, self._lib = native.load()
        self._state = self._ffi.new("struct rl_limiter *")
        self._keep = configure(self._state, self._ffi, channels, channels, sample_rate, ceiling_db, lookahead, release)
        self.channels = channels
        self.ceiling = self._state.ceiling
        self.delay = self._state.delay  # D

    @property
    def gain(self) -> float:
        """The gain on the last sample output (1.0: not limiting)."""
        return self._state.gain

    def process(self, x: np.ndarray) -> np.ndarray:
        """Limit x `[channels, n]`; returns a new float32 `[channels, n]`: input t comes out at t + delay."""
        frames = np.array(x.T, dtype=np.float32, order="C")  # a copy: the C code works in place
        if frames.size:
            self._lib.rl_limit(self._state, self._ffi.cast("float *", self._ffi.from_buffer(frames)), frames.shape[0])
        return np.ascontiguousarray(frames.T)
