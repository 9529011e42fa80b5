"""The realtime path: an audio callback and one model worker around a fixed-latency stream.

The callback (PortAudio's thread, or the clock thread of headless mode) only
copies between preallocated rings, counts, and wakes the worker through a
pipe: no model call, no buffer allocation, no logging, no lock another thread
can hold. An exception inside it zero-fills the period and is counted.

The worker sleeps until a whole push's worth of input is captured (one model
block when the stream runs at the model's rate: the callback wakes it only
then), pushes it through the processor and writes whatever output came back
straight into the output ring at its known place: processor output sample j
plays at device frame j + processor.latency + margin. Input captured at
device frame t is therefore played at t + processor.latency + margin,
always: a late worker costs output, never alignment, and never input.

Fallback: a period whose output is not ready plays the dry input delayed by
the same latency (or silence), faded in from the last played sample; when the
model catches up, a short crossfade goes back to it. Each such period counts
as one late block.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import math
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Protocol

import numpy as np

from ravelive.errors import ConfigError

log = logging.getLogger(__name__)

FALLBACKS = ("dry", "silence")
WORKER_PRIORITY = 5  # SCHED_FIFO priority of the worker: above every normal thread, below JACK's audio threads
_MCL_CURRENT, _MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux
_STATS_BLOCKS = 2048  # compute times kept for the median / p99


class Processor(Protocol):
    """A stream whose output sample j belongs `latency` samples after input sample j.

    `push(x[ch, n])` returns the next output samples, as many as are known (any number); after
    pushing input through sample t, output through t - latency must be out. `step`: pushes are
    worth making in multiples of this many frames (the model block; 1: any amount is useful).
    """

    latency: int
    step: int

    def push(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RealtimeConfig:
    sample_rate: int  # stream rate in Hz
    channels: int  # audio channels in and out
    period: int  # frames per callback (the host period)
    block: int  # model block in stream samples, the unit of the compute statistics
    margin: int  # samples added to the processor latency: the worker's time budget beyond one period
    ring_frames: int = 1 << 18  # ring capacity: how far the worker may fall behind before input is lost
    fallback: str = "dry"  # what a late period plays: "dry" (delayed input) or "silence"
    fade: int = 64  # samples of the fades into and out of the fallback
    startup: int = 0  # frames after the stream starts whose late periods count as start-up, not as late blocks


class Ring:
    """Preallocated frames-major ring addressed by absolute frame positions (one writer, one reader)."""

    def __init__(self, frames: int, channels: int):
        self.data = np.zeros((frames, channels), dtype=np.float32)
        self.frames = frames

    def write(self, position: int, source: np.ndarray) -> None:
        start = position % self.frames
        first = min(len(source), self.frames - start)
        self.data[start : start + first] = source[:first]
        self.data[: len(source) - first] = source[first:]

    def read(self, position: int, target: np.ndarray) -> None:
        start = position % self.frames
        first = min(len(target), self.frames - start)
        target[:first] = self.data[start : start + first]
        target[first:] = self.data[: len(target) - first]


@dataclass
class Counters:
    """Plain integers, each written by one thread only, read by anyone."""

    periods: int = 0  # callbacks run
    xruns: int = 0  # callbacks whose PortAudio status reported an under- or overflow
    late_blocks: int = 0  # periods that played the fallback (after start-up)
    startup_late_blocks: int = 0  # periods that played the fallback while the stream was starting (config.startup)
    callback_errors: int = 0  # callbacks that raised and played silence
    dropped_frames: int = 0  # input frames the worker never saw (it fell a whole ring behind)
    model_errors: int = 0  # chunks whose processing raised and played silence


class ComputeTimes:
    """Worker time per model block of audio: written by the worker, summarised by anyone."""

    def __init__(self, block_seconds: float):
        self.block_seconds = block_seconds
        self._times = np.zeros(_STATS_BLOCKS)
        self._count = 0

    def add(self, seconds: float) -> None:
        self._times[self._count % _STATS_BLOCKS] = seconds
        self._count += 1

    def summary(self) -> tuple[float, float]:
        """Median and p99 in seconds (0 before the first block)."""
        times = self._times[: min(self._count, _STATS_BLOCKS)].copy()
        if not len(times):
            return 0.0, 0.0
        return float(np.median(times)), float(np.percentile(times, 99))


class Realtime:
    """Callback + worker scheduling around one processor; see the module docstring."""

    def __init__(self, processor: Processor, config: RealtimeConfig):
        if config.fallback not in FALLBACKS:
            raise ConfigError(f"fallback {config.fallback!r} is not one of {FALLBACKS}; pick one of them")
        if config.ring_frames < 4 * (processor.latency + config.margin + config.period + processor.step):
            raise ConfigError(
                f"ring of {config.ring_frames} frames is too short for a latency of "
                f"{processor.latency + config.margin} samples and pushes of {processor.step}; "
                f"give at least four times their sum"
            )
        self.config = config
        self.counters = Counters()
        self.compute = ComputeTimes(config.block / config.sample_rate)
        self._processor = processor
        self._pending: tuple[Processor, int] | None = None
        self._fade: _Crossfade | None = None
        self._input = Ring(config.ring_frames, config.channels)
        self._output = Ring(config.ring_frames, config.channels)
        # Positions on the device timeline, each published by one thread.
        self._played = 0  # callback: frames captured and played so far
        self._wake_at = processor.step  # worker: the callback wakes it once `_played` reaches this
        self._consumed = 0  # worker: input frames pushed so far
        self._written = processor.latency  # worker: next output position before the margin (zeros below)
        self._ready = self._written + config.margin  # worker: output is valid below this frame
        # Callback-only scratch, allocated once.
        most = config.ring_frames // 4  # longest period the callback accepts
        self._dry = np.zeros((config.fade, config.channels), dtype=np.float32)
        self._silence = np.zeros((most, config.channels), dtype=np.float32)
        self._last = np.zeros(config.channels, dtype=np.float32)
        fade = np.linspace(0.0, 1.0, config.fade + 2, dtype=np.float32)[1:-1]
        self._fade_in = fade[:, None]
        self._fade_out = (1.0 - fade)[:, None]
        self._in_fallback = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._stop = False
        self._worker: threading.Thread | None = None
        self.worker_scope: Callable[[], ContextManager] = contextlib.nullcontext  # the worker runs inside it
        self.follow_audio_priority = False  # True: the worker asks for SCHED_FIFO just below the audio thread
        self.audio_thread = 0  # native id of the thread running the callback, recorded by its first call

    # -- the audio side ------------------------------------------------------------------

    @property
    def processor(self) -> Processor:
        """The processor now playing (the new one as soon as a swap has begun)."""
        pending = self._pending  # read once: the worker may clear it in between (the callback reads this too)
        return pending[0] if pending is not None else self._processor

    @property
    def latency(self) -> int:
        """Input-to-output delay in samples, constant for the life of the processor."""
        return self.processor.latency + self.config.margin

    def callback(self, indata: np.ndarray | None, outdata: np.ndarray, xrun: bool = False) -> None:
        """One host period: `indata` [frames, ch] captured (None: silence), `outdata` filled."""
        start = self._played
        try:
            self._period(indata, outdata)
        except Exception:  # noqa: BLE001 - anything raised here would stop the audio
            outdata.fill(0.0)
            self.counters.callback_errors += 1
            self._played = start + len(outdata)
        if xrun:
            self.counters.xruns += 1
        self.counters.periods += 1

    def _period(self, indata: np.ndarray | None, outdata: np.ndarray) -> None:
        if not self.audio_thread:
            self.audio_thread = threading.get_native_id()
        frames = len(outdata)
        start = self._played
        self._input.write(start, self._silence[:frames] if indata is None else indata)
        self._played = start + frames
        if self._played >= self._wake_at:  # a whole push is there: only then is the worker worth waking
            try:
                os.write(self._wake_write, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: the worker is already awake with work to do
        ready = self._ready - start
        if ready >= frames:
            self._output.read(start, outdata)
            if self._in_fallback:
                self._leave_fallback(start, outdata)
        else:
            self._enter_fallback(start, max(ready, 0), outdata)
        self._last[:] = outdata[frames - 1]

    def _fallback(self, start: int, target: np.ndarray) -> None:
        if self.config.fallback == "dry":
            self._input.read(start - self.latency, target)
        else:
            target.fill(0.0)

    def _enter_fallback(self, start: int, ready: int, outdata: np.ndarray) -> None:
        if ready:
            self._output.read(start, outdata[:ready])
            self._last[:] = outdata[ready - 1]
        rest = outdata[ready:]
        self._fallback(start + ready, rest)
        if not self._in_fallback:
            n = min(len(rest), self.config.fade)
            rest[:n] *= self._fade_in[:n]
            rest[:n] += self._last * self._fade_out[:n]
        self._in_fallback = True
        if start < self.config.startup:  # the audio thread's and the worker's first cycles, not the model's pace
            self.counters.startup_late_blocks += 1
        else:
            self.counters.late_blocks += 1

    def _leave_fallback(self, start: int, outdata: np.ndarray) -> None:
        n = min(len(outdata), self.config.fade)
        dry = self._dry[:n]
        self._fallback(start, dry)
        dry *= self._fade_out[:n]
        outdata[:n] *= self._fade_in[:n]
        outdata[:n] += dry
        self._in_fallback = False

    # -- the worker side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and return once its set-up (scheduling, memory locking) is done."""
        self._stop = False
        ready = threading.Event()
        self._worker = threading.Thread(target=self._run, args=(ready,), name="ravelive-worker", daemon=True)
        self._worker.start()
        ready.wait()

    def stop(self) -> None:
        self._stop = True
        os.write(self._wake_write, b"\0")
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def close(self) -> None:
        self.stop()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def swap(self, processor: Processor, crossfade: int) -> None:
        """Replace the processor without stopping: both run until a `crossfade`-sample fade is over."""
        self._pending = (processor, crossfade)

    @property
    def swapping(self) -> bool:
        return self._pending is not None or self._fade is not None

    def _run(self, ready: threading.Event) -> None:
        try:
            with self.worker_scope():
                ready.set()
                self._work()
        finally:
            ready.set()  # also when the scope failed to enter: start() must not wait forever

    def _work(self) -> None:
        block_time = 0.0
        block_left = self.config.block
        while not self._stop:
            step = self._processor.step
            self._wake_at = self._consumed + step  # published before `_played` is read: no wake-up is missed
            behind = self._played - self._consumed
            if behind < step:
                readable, _, _ = select.select([self._wake_read], [], [], 0.1)
                if readable:
                    os.read(self._wake_read, 4096)
                continue
            if self.follow_audio_priority and self.audio_thread:
                follow_audio_priority(self.audio_thread)
                self.follow_audio_priority = False
            if behind > self.config.ring_frames // 2:
                self._skip(behind)
                continue
            frames = step if step > 1 else behind  # one block at a time: each one's output goes out at once
            started = time.perf_counter()
            self._process(frames)
            block_time += time.perf_counter() - started
            block_left -= frames
            if block_left <= 0:  # this push completed a model block: its time is that block's
                self.compute.add(block_time)
                block_time, block_left = 0.0, block_left % self.config.block or self.config.block

    def _skip(self, behind: int) -> None:
        lost = behind - self.config.ring_frames // 4
        lost -= lost % self._processor.step
        self._consumed += lost
        self._written += lost  # the output that input would have made stays silent, in place
        self.counters.dropped_frames += lost
        log.warning("the model fell %d frames behind the audio; skipped them to stay in time", lost)

    def _process(self, frames: int) -> None:
        position = self._consumed
        chunk = np.empty((frames, self.config.channels), dtype=np.float32)
        self._input.read(position, chunk)
        if self._pending is not None:
            self._begin_swap(position)
        x = np.ascontiguousarray(chunk.T)
        written = self._written
        try:
            if self._fade is None:
                y = self._processor.push(x)
            else:
                y = self._fade.push(x, written)
                if self._fade.done:
                    self._fade = None  # the old stream is dropped
        except Exception as error:  # noqa: BLE001 - a failing model must not take the audio down
            if not self.counters.model_errors:
                log.error("the model failed, playing silence for its output: %s", error)
            self.counters.model_errors += 1
            self._fade = None
            y = np.zeros_like(x)  # silence in place of this input's output: the timeline stays aligned
        self._output.write(written + self.config.margin, y.T)
        self._consumed = position + frames
        self._written = written + y.shape[1]
        self._ready = self._written + self.config.margin

    def _begin_swap(self, position: int) -> None:
        processor, crossfade = self._pending
        self._fade = _Crossfade(self._processor, processor, position, self._written, crossfade)
        self._processor = processor
        self._pending = None


class _Crossfade:
    """Two processors on the same input while the old one fades into the new one, on the output timeline.

    Positions count output samples before the margin: the old processor's output continues at
    `written`, the new one's starts at the swap's input position + its latency (its output before
    that is silence). The fade starts where the new output first sounds, or at `written` if later.
    """

    def __init__(self, old: Processor, new: Processor, position: int, written: int, length: int):
        self.old, self.new = old, new
        self.old_tail = np.zeros((0, 0), dtype=np.float32)  # old output from `written` on, not yet mixed
        self.new_tail = np.zeros((0, 0), dtype=np.float32)  # new output from `new_start` on, not yet mixed
        self.new_start = position + new.latency
        self.start = max(self.new_start, written)
        self.end = self.start + max(length, 1)  # from here on only the new output sounds
        self.done = False

    def push(self, x: np.ndarray, written: int) -> np.ndarray:
        """Both processors take `x`; returns the mixed output from `written` on, as far as both are known."""
        old_y, new_y = self.old.push(x), self.new.push(x)
        self.old_tail = old_y if not self.old_tail.size else np.concatenate([self.old_tail, old_y], axis=1)
        self.new_tail = new_y if not self.new_tail.size else np.concatenate([self.new_tail, new_y], axis=1)
        old_end, new_end = written + self.old_tail.shape[1], self.new_start + self.new_tail.shape[1]
        old_limit = old_end if old_end < self.end else math.inf  # past the fade the old output is not needed
        end = min(old_limit, max(new_end, self.start))
        count = max(end - written, 0)
        weight = np.clip((np.arange(written, written + count) - self.start + 1) / (self.end - self.start), 0, 1)
        out = np.zeros((x.shape[0], count), dtype=np.float32)
        from_old = min(count, self.old_tail.shape[1])
        out[:, :from_old] = self.old_tail[:, :from_old] * (1.0 - weight[:from_old]).astype(np.float32)
        first_new = max(written, self.start)  # before the fade the new stream is silent or not yet there
        if first_new < written + count:
            fresh = self.new_tail[:, first_new - self.new_start : written + count - self.new_start]
            out[:, first_new - written :] += fresh * weight[first_new - written :].astype(np.float32)
        self.old_tail = self.old_tail[:, from_old:]
        dropped = min(max(written + count - self.new_start, 0), self.new_tail.shape[1])
        self.new_tail, self.new_start = self.new_tail[:, dropped:], self.new_start + dropped
        self.done = written + count >= self.end
        return out


def follow_audio_priority(audio_thread: int) -> None:
    """Give the calling (worker) thread SCHED_FIFO just below the audio thread, if that one is realtime.

    A worker above a normal-priority audio thread (a JACK server started without -R, the clock thread)
    would preempt the very callback it feeds, so then it stays at normal priority.
    """
    if not hasattr(os, "sched_setscheduler"):
        log.info("realtime scheduling: not available on this system; the worker runs at normal priority")
        return
    try:
        policy = os.sched_getscheduler(audio_thread)
        audio_priority = os.sched_getparam(audio_thread).sched_priority
    except OSError:
        policy, audio_priority = os.SCHED_OTHER, 0
    if policy not in (os.SCHED_FIFO, os.SCHED_RR) or audio_priority < 2:
        log.info("realtime scheduling: the audio thread is not realtime, so the worker stays at normal priority "
                 "(with JACK, run jackd with -R)")
        return
    priority = min(WORKER_PRIORITY, audio_priority - 1)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        log.info("realtime scheduling: worker SCHED_FIFO %d, audio thread %d", priority, audio_priority)
    except PermissionError:
        log.warning("realtime scheduling refused: allow it with LimitRTPRIO (systemd) or an rtprio limit for "
                    "the audio group (/etc/security/limits.d); the worker runs at normal priority")


def lock_memory() -> None:
    """mlockall: keep the model and the buffers in RAM; log what was granted."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
        log.info("memory locked (mlockall): the model cannot be paged out")
    else:
        code = ctypes.get_errno()
        log.warning("mlockall refused (%s): raise LimitMEMLOCK (systemd) or the memlock limit; pages may be "
                    "swapped out under memory pressure", errno.errorcode.get(code, code))
