"""The realtime path: an audio callback and one model worker around a fixed-latency stream.

The callback is C (ravelive/engine/native/rtcallback.c, see engine.native):
PortAudio's thread, or the C clock thread of headless mode, runs it without
the GIL. It only copies between preallocated rings, plays the fallback,
counts, and wakes the worker through a pipe; `Realtime.callback` runs the same
C function from Python (tests). A period longer than the rings allow plays
silence and is counted as a callback error.

The worker sleeps until a whole push's worth of input is captured (one model
block when the stream runs at the model's rate: the callback wakes it only
then), pushes it through the processor and writes whatever output came back
straight into the output ring at its known place: processor output sample j
plays at device frame j + latency. Input captured at device frame t is
therefore played at t + latency, always: a late worker costs output, never
alignment, and never input.

Latency = alignment + margin (`schedule`). The margin is the worker's compute
budget in whole periods: a push completed by one callback has until the
callback `margin / period` periods later (at least one period). The alignment
is the rest: the processor's latency, less the part of it that is the wait
for a whole push (the schedule already waits for that), plus the longest wait
from a push's first frame to the callback that completes it, less the one
period that the margin already counts. So no sample of the latency is spent on
nothing: one sample less and the worst-placed push would lose a period.

The DC blocker, the output gain and the true-peak limiter are the callback's too (a fader or a boost is
heard in the next period, limited): it reads the output ring the limiter's delay ahead of the device, so the
schedule counts that delay as part of the processor's latency.

Fallback: a period whose output is not ready plays the dry input delayed by
the same latency (or silence), faded in from the last played sample; when the
model catches up, a short crossfade goes back to it. Such periods count as
late periods, and each model block whose output was missing (some of it) as
one late block.
"""

import concurrent.futures
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

from ravelive.dsp import limiter
from ravelive.dsp.fifo import Ring
from ravelive.engine.native import RT_OUTCOMES, CallbackState
from ravelive.errors import ConfigError

log = logging.getLogger(__name__)

FALLBACKS = ("dry", "silence")
WORKER_PRIORITY = 5  # SCHED_FIFO priority of the worker: above every normal thread, below JACK's audio threads
AUDIO_PRIORITY = 70  # SCHED_FIFO priority the C callback asks for where the host API leaves it normal (ALSA, clock)
_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4  # <sys/mman.h> on Linux (MCL_ONFAULT: 4.4 and later)
_STATS_BLOCKS = 2048  # compute times kept for the median / p99


class Processor(Protocol):
    """A stream whose output sample j belongs `latency` samples after input sample j.

    `push(x[ch, n])` returns the next output samples, as many as are known (any number): output j
    must be out once the push holding input j + latency - (step - 1) is made (a block processor's
    latency includes the wait for its block: B - 1). `step`: pushes are worth making in multiples of
    this many frames (the model block; 1: any amount is useful, and output j follows input j + latency).
    `frames_wanted()`: input frames before a push can return anything new (the worker sleeps until
    then: a resampled model block spans a fractional number of periods, and waking every period to
    push what a block does not yet complete costs the worker a few per cent of a core for nothing).
    """

    latency: int
    step: int

    def push(self, x: np.ndarray) -> np.ndarray: ...

    def frames_wanted(self) -> int: ...


@dataclass(frozen=True)
class RealtimeConfig:
    sample_rate: int  # stream rate in Hz
    channels: int  # audio channels in and out
    period: int  # frames per callback (the host period)
    block: int  # model block in stream samples, the unit of the compute statistics and of late_blocks
    margin: int  # the worker's compute budget in samples, rounded up to whole periods (at least one)
    ring_frames: int = 1 << 18  # ring capacity: how far the worker may fall behind before input is lost
    fallback: str = "dry"  # what a late period plays: "dry" (delayed input) or "silence"
    fade: int = 64  # samples of the fades into and out of the fallback
    startup: int = 0  # frames after the stream starts whose late periods count as start-up, not as late ones
    gain_ramp: int = 1  # frames a change of the output gain (CallbackState.set_gain) ramps over
    audio_channels: int | None = None  # the channels the DC blocker, gain and limiter act on, the first ones (CV
    # jacks follow)
    limiter: bool = False  # in the callback: the DC blocker before the output gain, the true-peak limiter after it
    # (the limiter's delay is latency)


def whole_periods(margin: int, period: int) -> int:
    """A margin rounded up to whole periods, at least one: the budget only grows a period at a time."""
    return max(1, math.ceil(margin / period)) * period


def callback_lookahead(sample_rate: int, limiter_on: bool) -> int:
    """Frames the callback reads the output ring ahead of the device: its limiter's delay (0 without one)."""
    return limiter.delay_at(sample_rate) if limiter_on else 0


def processor_schedule(processor: "Processor", period: int, margin: int, lookahead: int) -> tuple[int, int]:
    """(latency, alignment) of `processor` behind a callback that reads the ring `lookahead` early: its
    output must be there as if the processor's latency held that delay too."""
    return schedule(processor.latency + lookahead, processor.step, period, margin)


def schedule(latency: int, step: int, period: int, margin: int) -> tuple[int, int]:
    """(realtime latency, alignment) for a processor of `latency` pushed `step` frames at a time.

    Output j of a processor with step S is out once the push holding input j + latency - (S - 1) is
    pushed (its latency includes waiting for a whole push). A push [i, i + S) is complete at the first
    callback boundary at or after i + S; `wait` is the longest i + S ... boundary delay measured from i.
    The push's first new output sample, at input i + S - 1 - latency, must play in a period filled by a
    callback `margin` frames after the completing one: latency = alignment + margin with
    alignment = latency - (S - 1) + wait - period.
    """
    margin = whole_periods(margin, period)
    cycle = math.lcm(step, period) // step  # pushes until the pattern of push ends and boundaries repeats
    wait = max(-(-(m + 1) * step // period) * period - m * step for m in range(cycle))
    alignment = latency - (step - 1) + wait - period
    return alignment + margin, alignment


@dataclass(frozen=True)
class Counters:
    """A snapshot of the counts (the callback's come from C)."""

    periods: int = 0  # callbacks run
    xruns: int = 0  # callbacks whose PortAudio status reported an under- or overflow
    late_periods: int = 0  # periods that played some fallback (after start-up)
    late_blocks: int = 0  # model blocks whose output missed its period (after start-up)
    startup_late_periods: int = 0  # late periods while the stream was starting (config.startup)
    startup_late_blocks: int = 0  # late blocks while the stream was starting
    callback_errors: int = 0  # periods longer than the rings allow, played as silence
    dropped_frames: int = 0  # input frames the worker never saw (it fell a whole ring behind)
    model_errors: int = 0  # chunks whose processing raised and played silence


_C_COUNTERS = ("periods", "xruns", "late_periods", "late_blocks", "startup_late_periods", "startup_late_blocks",
               "callback_errors")


class ComputeTimes:
    """Worker time per model block of audio: written by the worker, summarised by anyone."""

    def __init__(self, block_frames: int, sample_rate: int):
        self.block_frames = block_frames  # stream frames per model block
        self.block_seconds = block_frames / sample_rate
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
        self.config = config
        self.margin = whole_periods(config.margin, config.period)  # the compute budget
        self.lookahead = callback_lookahead(config.sample_rate, config.limiter)  # the limiter plays it that much later
        latency, self.alignment = processor_schedule(processor, config.period, self.margin, self.lookahead)
        if config.ring_frames < 4 * (latency + config.period + processor.step):
            raise ConfigError(
                f"ring of {config.ring_frames} frames is too short for a latency of {latency} samples and "
                f"pushes of {processor.step}; give at least four times their sum"
            )
        self._latency = latency
        self._shift = latency - processor.latency  # processor output j sits at ring position j + latency
        self.compute = ComputeTimes(config.block, config.sample_rate)
        self._dropped_frames = 0
        self._model_errors = 0
        self._processor = processor
        self._pending: tuple[Processor, int, int, int] | None = None  # processor, crossfade, block, latency
        self._fade: _Crossfade | None = None
        self._input = Ring(config.ring_frames, config.channels)
        self._output = Ring(config.ring_frames, config.channels)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        fade = np.linspace(0.0, 1.0, config.fade + 2, dtype=np.float32)[1:-1].copy()
        self.native = CallbackState(self._input, self._output, fade, config.fallback, config.startup,
                                    self._wake_write, max_frames=config.ring_frames // 4, gain_ramp=config.gain_ramp,
                                    audio_channels=config.audio_channels,
                                    safety_rate=config.sample_rate if config.limiter else None)
        self.native.store("latency", latency)
        self.native.store("block", config.block)
        # Positions on the device timeline: `played` (callback) lives in C, the worker's own ones here.
        self._consumed = 0  # worker: input frames pushed so far
        self._written = processor.latency  # worker: next output position before the shift (zeros below)
        self.native.store("wake_at", processor.step)  # the callback wakes the worker once `played` reaches this
        self.native.store("ready", self._written + self._shift)  # output is valid below this frame
        self._stop = False
        self._closed = False
        self._worker: threading.Thread | None = None
        self._beside: concurrent.futures.ThreadPoolExecutor | None = None  # the crossfade's second thread
        self._scheduling_reported = False
        self.worker_scope: Callable[[], ContextManager] = contextlib.nullcontext  # the worker runs inside it
        self.follow_audio_priority = False  # True: the worker asks for SCHED_FIFO just below the audio thread

    # -- the audio side ------------------------------------------------------------------

    @property
    def processor(self) -> Processor:
        """The processor now playing (the new one as soon as a swap has begun)."""
        pending = self._pending  # read once: the worker may clear it in between
        return pending[0] if pending is not None else self._processor

    @property
    def latency(self) -> int:
        """Input-to-output delay in samples, constant for the life of the processor."""
        return self._latency

    @property
    def audio_thread(self) -> int:
        """Kernel thread id running the callback, recorded by its first period (0 before)."""
        return self.native.audio_thread

    @property
    def played(self) -> int:
        """Frames the callback has captured and played."""
        return self.native.load("played")

    @property
    def ready(self) -> int:
        """The output ring is valid below this device frame."""
        return self.native.load("ready")

    @property
    def counters(self) -> Counters:
        native = self.native
        return Counters(**{name: native.counter(name) for name in _C_COUNTERS},
                        dropped_frames=self._dropped_frames, model_errors=self._model_errors)

    def callback(self, indata: np.ndarray | None, outdata: np.ndarray, xrun: bool = False) -> None:
        """One host period through the C callback, on this thread: `indata` [frames, ch] (None: silence)."""
        self.native.run_period(indata, outdata, xrun)

    # -- the worker side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and return once its set-up (scheduling, memory locking) is done."""
        if self._closed:
            raise RuntimeError("this Realtime is closed; make a new one")
        self._stop = False
        # The crossfade of a hot swap runs both models on every block until the fade ends: the new one runs on
        # this second thread meanwhile, or a model that needs most of a block's time would make the fade late.
        self._beside = concurrent.futures.ThreadPoolExecutor(1, "ravelive-crossfade", initializer=self._enter_scope)
        ready = threading.Event()
        self._worker = threading.Thread(target=self._run, args=(ready,), name="ravelive-worker", daemon=True)
        self._worker.start()
        ready.wait()

    def stop(self) -> None:
        """Stop the worker; safe to call twice, before start, and after close."""
        self._stop = True
        if not self._closed:
            with contextlib.suppress(BlockingIOError):  # full: the worker has a wake-up pending anyway
                os.write(self._wake_write, b"\0")
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._beside is not None:
            self._beside.shutdown()
            self._beside = None

    def close(self) -> None:
        """Stop the worker and release the pipe (after the audio stopped); safe to call twice."""
        self.stop()
        if self._closed:
            return
        self._closed = True
        self.native.store_wake_fd(-1)  # a callback still running writes nowhere
        os.close(self._wake_read)
        os.close(self._wake_write)

    def swap(self, processor: Processor, crossfade: int, block: int | None = None) -> None:
        """Replace the processor without stopping: both run until a `crossfade`-sample fade is over.

        `block`: the new model block in stream samples (default: unchanged), for the statistics.
        """
        latency, _ = processor_schedule(processor, self.config.period, self.margin, self.lookahead)
        block = block or self.compute.block_frames
        self._pending = (processor, crossfade, block, latency)
        self._latency = latency
        self.native.store("latency", latency)  # the dry fallback follows the new latency at once

    @property
    def swapping(self) -> bool:
        return self._pending is not None or self._fade is not None

    def _enter_scope(self) -> None:
        """The crossfade thread's set-up: the worker's scope for its whole life, and the worker's priority."""
        self.worker_scope().__enter__()  # left when the thread ends
        if self.follow_audio_priority and self.native.audio_thread:
            follow_audio_priority(self.native.audio_thread)

    def _run(self, ready: threading.Event) -> None:
        try:
            with self.worker_scope():
                ready.set()
                self._work()
        finally:
            ready.set()  # also when the scope failed to enter: start() must not wait forever

    def _work(self) -> None:
        block_time = 0.0
        block_left = self.compute.block_frames
        native = self.native
        while not self._stop:
            step = self._processor.step
            wanted = self._frames_wanted()
            native.store("wake_at", self._consumed + wanted)  # before `played` is read: no wake-up is missed
            behind = native.load("played") - self._consumed
            if behind < wanted:
                readable, _, _ = select.select([self._wake_read], [], [], 0.1)
                if readable:
                    os.read(self._wake_read, 4096)
                continue
            if not self._scheduling_reported:
                self._report_scheduling()
            if behind > self.config.ring_frames // 2:
                self._skip(behind)
                continue
            frames = wanted if step > 1 else behind  # one block at a time: each one's output goes out at once
            compute = self.compute
            started = time.perf_counter()
            self._process(frames)
            if self.compute is not compute:  # a swap began or ended: the statistics start again
                block_time, block_left = 0.0, self.compute.block_frames
                continue
            block_time += time.perf_counter() - started
            block_left -= frames
            if block_left <= 0:  # this push completed a model block: its time is that block's
                compute.add(block_time)
                block_time, block_left = 0.0, block_left % compute.block_frames or compute.block_frames

    def _frames_wanted(self) -> int:
        """Input frames before the next push yields output; in a crossfade, whichever side needs one first."""
        wanted = self._processor.frames_wanted()
        return wanted if self._fade is None else min(wanted, self._fade.old.frames_wanted())

    def _report_scheduling(self) -> None:
        result, priority = self.native.scheduling
        if not result:
            return
        self._scheduling_reported = True
        if result == 1:
            log.info("realtime scheduling: audio thread raised to SCHED_FIFO %d", priority)
        elif result < 0:
            log.warning("realtime scheduling of the audio thread refused (%s): allow it with LimitRTPRIO (systemd) "
                        "or an rtprio limit for the audio group (/etc/security/limits.d)",
                        errno.errorcode.get(-result, -result))
        else:
            log.info("realtime scheduling: audio thread %s%s", RT_OUTCOMES[result],
                     f" (priority {priority})" if priority else "")
        if self.follow_audio_priority and self.native.audio_thread:
            follow_audio_priority(self.native.audio_thread)

    def _skip(self, behind: int) -> None:
        lost = behind - self.config.ring_frames // 4
        lost -= lost % self._processor.step
        self._consumed += lost
        self._written += lost  # the output that input would have made stays silent, in place
        self._dropped_frames += lost
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
                    self._fade = None  # the old stream is dropped: from here on the times are the new model's
                    self.compute = ComputeTimes(self.compute.block_frames, self.config.sample_rate)
        except Exception as error:  # noqa: BLE001 - a failing model must not take the audio down
            if not self._model_errors:
                log.error("the model failed, playing silence for its output: %s", error)
            self._model_errors += 1
            self._fade = None
            y = np.zeros_like(x)  # silence in place of this input's output: the timeline stays aligned
        self._output.write(written + self._shift, y.T)
        self._consumed = position + frames
        self._written = written + y.shape[1]
        self.native.store("ready", self._written + self._shift)

    def _begin_swap(self, position: int) -> None:
        processor, crossfade, block, latency = self._pending
        # On the output timeline of the old shift, the new stream's output j sits at j + its latency - shift.
        self._fade = _Crossfade(self._processor, processor, position, self._written, crossfade,
                                latency - self._shift, self._beside)
        self._processor = processor
        self.compute = ComputeTimes(block, self.config.sample_rate)
        self.native.store("block", block)
        self._pending = None


class _Crossfade:
    """Two processors on the same input while the old one fades into the new one, on the output timeline.

    Positions count output samples on the old processor's output timeline: its output continues at
    `written`, the new one's starts at the swap's input position + `new_latency`, its latency on that
    timeline (its output before that is silence). The fade starts where the new output first sounds,
    or at `written` if later.
    """

    def __init__(self, old: Processor, new: Processor, position: int, written: int, length: int,
                 new_latency: int, beside: concurrent.futures.Executor):
        self.old, self.new = old, new
        self._beside = beside  # the new processor runs there while the old one runs here
        self.old_tail = np.zeros((0, 0), dtype=np.float32)  # old output from `written` on, not yet mixed
        self.new_tail = np.zeros((0, 0), dtype=np.float32)  # new output from `new_start` on, not yet mixed
        self.new_start = position + new_latency
        self.start = max(self.new_start, written)
        self.end = self.start + max(length, 1)  # from here on only the new output sounds
        self.done = False

    def push(self, x: np.ndarray, written: int) -> np.ndarray:
        """Both processors take `x`; returns the mixed output from `written` on, as far as both are known."""
        new_pending = self._beside.submit(self.new.push, x)
        old_y, new_y = self.old.push(x), new_pending.result()
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
    """mlockall: keep the model and the buffers in RAM; log what was granted.

    Pages are locked as they are touched (MCL_ONFAULT), not filled in when mapped: without it every
    thread started later (a watcher, OSC's, JACK's, a swap's) has its whole 8 MiB stack filled under the
    process's memory-map lock, and a worker allocating meanwhile waits for it (seen: a new thread at
    start-up held the worker's first block 30-40 ms, a late block at every other start). Kernels before
    4.4 refuse the flag (EINVAL): then everything is filled in as before.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    flags = _MCL_CURRENT | _MCL_FUTURE
    locked = libc.mlockall(flags | _MCL_ONFAULT) == 0 or (ctypes.get_errno() == errno.EINVAL and libc.mlockall(flags) == 0)
    if locked:
        log.info("memory locked (mlockall): the model cannot be paged out")
    else:
        code = ctypes.get_errno()
        log.warning("mlockall refused (%s): raise LimitMEMLOCK (systemd) or the memlock limit; pages may be "
                    "swapped out under memory pressure", errno.errorcode.get(code, code))
