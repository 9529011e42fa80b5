"""Streaming sample-rate conversion with a known latency: our low-delay FIR live, soxr offline.

Quality "live" (`LIVE_QUALITY`, serve's default) is `dsp.polyphase`: a
linear-phase polyphase FIR that holds back about 30 frames per direction
at 44.1 <-> 48 kHz (1.3 ms round trip), flat to 18 kHz, aliases 80 dB
down. The soxr recipes (QQ ... VHQ; `QUALITY` = HQ is `process`'s default)
hold back ~1000 frames per direction, for a cleaner top octave.

soxr's streaming resampler is time-aligned: output frame j is the input
signal at time j / out_rate (its linear-phase filter delay is compensated).
What it costs is availability: it holds output back until its internal
blocks fill, so after n input frames it has returned
n * out_rate / in_rate - held frames, where `held` (soxr's own `delay()`)
rises and falls as a sawtooth whatever the chunk sizes fed to it.

`ResampleStream.latency` is the most output frames it ever holds back for a
given rate pair and quality. It is measured once per rate pair (feeding
silence one frame at a time over several sawtooth periods, where the peaks
settle within a frame) plus a safety margin, and cached. Callers that emit a
fixed-latency stream (StreamEngine) add it to their own delay.
"""

import functools

import numpy as np
import soxr

from ravelive.dsp.polyphase import PolyphaseResampler
from ravelive.dsp.qualities import LIVE_QUALITY, QUALITIES, QUALITY, SOXR_QUALITIES  # noqa: F401 - re-exported
from ravelive.errors import ConfigError

_PROBE_PERIODS = 4  # output bursts observed when measuring the hold-back; later peaks differ by < 1 frame
_PROBE_MIN_FRAMES = 4096  # and at least this many input frames (low qualities emit a little every frame)
_PROBE_MAX_FRAMES = 1 << 18  # give up measuring after this many input frames (a resampler that never bursts)
_SAFETY_FRAMES = 2.0  # added to the measured peak: covers the sub-frame drift of the sawtooth peaks


class ResampleStream:
    """Resamples a [channels, n] float32 stream chunk by chunk, in order, with `latency` known."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = QUALITY) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ConfigError(f"sample rates must be positive, got {in_rate} Hz -> {out_rate} Hz; give rates in Hz")
        check_quality(quality)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self.quality = quality
        if quality == LIVE_QUALITY:
            self._live = PolyphaseResampler(in_rate, out_rate, channels)
            self.latency = self._live.latency
            self.process = self._live.process  # no extra call per chunk
        else:
            self._live = None
            self.latency = held_back_frames(in_rate, out_rate, quality)
            self._resampler = soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality=quality)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed x [channels, n]; return every output frame that became available, [channels, m]."""
        frames_major = np.ascontiguousarray(x.T)
        return self._resampler.resample_chunk(frames_major).T

    def inputs_for(self, outputs: int) -> int:
        """Input frames after which `outputs` more output frames may be out: exact for the live converter;
        1 for soxr, whose FFT blocks release output at points it does not expose."""
        return self._live.inputs_for(outputs) if self._live is not None else 1

    def reset(self) -> None:
        """Forget all input: the next chunk starts a new stream."""
        if self._live is not None:
            self._live.reset()
        else:
            self._resampler.clear()


def check_quality(quality: str) -> str:
    """`quality` if it is one of QUALITIES, else ConfigError in one line listing them."""
    if quality not in QUALITIES:
        raise ConfigError(
            f"resample quality {quality!r} is not one of {', '.join(QUALITIES)}; "
            f"serve's default is {LIVE_QUALITY} (lowest latency), process's {QUALITY}"
        )
    return quality


@functools.lru_cache(maxsize=None)
def held_back_frames(in_rate: int, out_rate: int, quality: str = QUALITY) -> float:
    """The most output frames a soxr recipe holds back for this rate pair (measured, plus a safety margin)."""
    probe = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    frame = np.zeros(1, dtype=np.float32)
    peak = 0.0
    bursts = 0
    for fed in range(1, _PROBE_MAX_FRAMES + 1):
        produced = len(probe.resample_chunk(frame))
        peak = max(peak, probe.delay())
        bursts += produced > 0
        if bursts > _PROBE_PERIODS and fed >= _PROBE_MIN_FRAMES:
            return peak + _SAFETY_FRAMES
    raise ConfigError(
        f"soxr {quality} {in_rate} Hz -> {out_rate} Hz produced no steady output in {_PROBE_MAX_FRAMES} frames; "
        "use a more common pair of sample rates"
    )

