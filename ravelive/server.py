"""`ravelive serve`: a model, its engine, the realtime scheduler and the audio, kept running.

`Server(config)` loads the model, warms it up (which also measures the
compute time per block that `--latency-margin auto` needs), and wires
StreamEngine -> Controlled (gains, wet/dry, latents and attributes from the
control store) into the realtime worker, and the worker into the audio path.
`run()` adds what the daemon needs around it: signals, `--duration`,
periodic stats and the summary.

The control layer uses `status()`, `load_model()`, `reload_model()`
(asynchronous hot swaps) and `controls` (the ParameterStore whose snapshot
the worker applies once per chunk).
"""

import contextlib
import gc
import logging
import math
import os
import select
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ravelive.audio import AudioPath, AudioSettings, has_output_device
from ravelive.control.model_params import AttributeApplier, ControlSnapshot, ModelControls
from ravelive.control.osc import OscConfig
from ravelive.control.service import ControlService
from ravelive.control.params import ParameterStore
from ravelive.control.presets import AUTOSAVE_NAME, Autosave, PresetLibrary, default_presets_dir
from ravelive.dsp.fifo import AudioFifo
from ravelive.dsp.resample import LIVE_QUALITY
from ravelive.dsp.smoothing import GainRamp, WetDryMix
from ravelive.engine.realtime import Realtime, RealtimeConfig, lock_memory
from ravelive.engine.stream import LatentSink, StreamEngine
from ravelive.errors import AudioDeviceError, ConfigError, RaveliveError
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel
from ravelive.systemd import notify, watchdog_interval

log = logging.getLogger(__name__)

AUTO_HEADROOM = 1.5  # auto margin: at least this many times the p99 warm-up compute time (margin_from_compute)
STARTUP_SECONDS = 0.5  # late periods this soon after the stream starts are counted apart (JACK's first cycles)
WARMUP_SECONDS = 1.0  # audio timed through a throwaway engine before the stream starts (at least 8 blocks)
WARMUP_UNTIMED = 4  # first blocks not timed: TorchScript profiles and optimises its first calls
CROSSFADE_SECONDS = 0.05  # hot swap: old and new model overlap this long
RAMP_SECONDS = 0.01  # gain and wet/dry changes glide over this long
SWITCH_INTERVAL = 0.001  # seconds a Python thread may hold the GIL while the audio callback waits for it


@dataclass(frozen=True)
class ServeConfig:
    model: Path | None = None  # None: the bundled default model
    method: str | None = None  # None: forward (or the model's first method)
    input_device: int | str | None = None  # PortAudio index or name; None: default; "none": no sound card
    output_device: int | str | None = None
    sample_rate: int | None = None  # None: the model's rate (48000 when it names none)
    channels: int | None = None  # None: the method's channel count
    period: int = 256  # frames per audio callback
    block: int | None = None  # model block; None: the smallest legal one
    latency_margin_ms: float | None = None  # None: auto, from the warm-up compute times
    threads: int | None = None  # torch threads; None: default_threads()
    input_file: Path | None = None  # loop this file as the live input
    output_file: Path | None = None  # record what is played
    duration: float | None = None  # seconds; None: until SIGINT/SIGTERM
    stats_interval: float | None = None  # seconds between stats lines; None: none
    realtime: bool = True  # request SCHED_FIFO for the worker and mlockall
    fallback: str = "dry"  # what a late period plays: "dry" (latency-aligned input) or "silence"
    resample_quality: str = LIVE_QUALITY  # when the stream rate differs from the model's; live: ~1.3 ms round trip
    preset: str | None = None  # applied before the audio starts; "last": resume (and keep autosaving) the state
    presets_dir: Path | None = None  # where --preset is read from; None: control.presets.default_presets_dir()
    osc: OscConfig | None = None  # OSC control (ravelive.control); None: no network control
    discovery: bool = True  # with osc: OSCQuery over HTTP and mDNS announcements


def default_threads() -> int:
    """Torch threads: leave one core to the audio thread, control and the OS; more than 4 rarely helps."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def margin_from_compute(p99_seconds: float, sample_rate: int, period: int) -> int:
    """Auto margin: the p99 compute time plus headroom, in whole periods.

    The worker gets a block when the callback that completes it returns, and its output is first played
    `margin` samples later, rounded up to whole periods: the margin is the compute budget. The headroom is
    the larger of AUTO_HEADROOM x p99 (slow blocks of a heavy model) and one period (scheduling jitter:
    with a budget of one period and a p99 near it, a single late wake-up of the audio or worker thread is
    a late block; seen as 2 late blocks in 10 s on a JACK dummy server with the bundled model).
    """
    compute = p99_seconds * sample_rate
    frames = max(AUTO_HEADROOM * compute, compute + period)
    return math.ceil(frames / period) * period


class Controlled:
    """The engine with the control snapshot applied (gains, wet/dry, latents, attributes), as a realtime Processor.

    Its output sample j is the engine's output sample j mixed with input sample j (the dry signal at the
    same place): both belong `latency` samples after input j. `step` is one model block when the stream
    runs at the model's rate (a push of fewer frames would only buffer); with resampling any push may
    finish a block, so every period is pushed.
    """

    def __init__(self, engine: StreamEngine, store: ParameterStore[ControlSnapshot], controls: ModelControls):
        self.engine = engine
        self.latency = engine.latency
        self.step = engine.block if engine.sample_rate == engine.model_rate else 1
        self._store = store
        self._controls = controls
        self._attributes = AttributeApplier(engine.model, controls, store)
        ramp = max(1, int(RAMP_SECONDS * engine.sample_rate))
        snapshot = store.snapshot()
        self._input_gain = GainRamp(ramp, snapshot.input_gain)
        self._output_gain = GainRamp(ramp, snapshot.output_gain)
        self._mix = WetDryMix(ramp, snapshot.wet)
        self._dry = AudioFifo(engine.channels, 2 * engine.latency + 4096)  # inputs whose output is not out yet

    def push(self, x: np.ndarray) -> np.ndarray:
        snapshot = self._store.snapshot()  # one immutable snapshot per push
        if self.engine.latent_dims and snapshot.latent is not None and snapshot.latent.dims == self.engine.latent_dims:
            self.engine.latent = snapshot.latent
        if snapshot.attributes.keys() == self._controls.attribute_names.keys():  # not another model's, mid-swap
            self._attributes.apply(snapshot)
        self._dry.reserve(self._dry.available + x.shape[1])
        self._dry.write(x)
        wet = self.engine.push(self._input_gain.apply(x.copy(), snapshot.input_gain))
        if not wet.shape[1]:
            return wet
        dry = self._dry.read(wet.shape[1])
        return self._output_gain.apply(self._mix.apply(wet, dry, snapshot.wet), snapshot.output_gain)


class Server:
    """The running daemon; see the module docstring."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._use_device = _use_device(config)  # first: a missing sound card is reported before the model loads
        torch.set_num_threads(config.threads or default_threads())
        torch.set_flush_denormal(True)
        self.model_path = Path(config.model) if config.model else DEFAULT_MODEL_PATH
        model = NNModel.load(self.model_path)
        self.sample_rate = config.sample_rate or model.sample_rate or 48000
        probe = StreamEngine(model, config.method, config.block, self.sample_rate, config.channels)
        self.channels = probe.channels
        self.latent_sink: LatentSink | None = None  # set_latent_sink: every live engine hands its latent frames here
        self._model_controls = ModelControls.from_model(model, method=probe.method)
        self.controls: ParameterStore[ControlSnapshot] = self._model_controls.store()
        method = self._recall_preset(probe.method)  # before the listener: nothing runs yet that could hot-swap
        self.controls.add_listener(self._on_control)
        processor, p99 = self._prepare(model, method)
        if config.latency_margin_ms is None:
            margin = margin_from_compute(p99, self.sample_rate, config.period)
        else:
            margin = round(config.latency_margin_ms * self.sample_rate / 1000)
        self.realtime = Realtime(
            processor,
            RealtimeConfig(
                sample_rate=self.sample_rate, channels=self.channels, period=config.period,
                block=processor.engine.block * self.sample_rate // processor.engine.model_rate,
                margin=margin, ring_frames=_ring_frames(processor.latency + margin, self.sample_rate),
                fallback=config.fallback, startup=round(STARTUP_SECONDS * self.sample_rate),
            ),
        )
        self.realtime.worker_scope = self._worker_scope
        self.realtime.follow_audio_priority = config.realtime
        self.audio = AudioPath(self._audio_settings(), self.realtime.callback)
        self._swap_lock = threading.Lock()
        self._started = 0.0
        self.warmup_p99 = p99

    # -- building --------------------------------------------------------------------------

    def _prepare(self, model: NNModel, method: str) -> tuple[Controlled, float]:
        """Warm `model` up on a throwaway engine (timing each block), then build the live one."""
        c = self.config
        warm = StreamEngine(model, method, c.block, self.sample_rate, self.channels, self.channels, c.resample_quality)
        times = _warm_up(warm, c.period, paced=hasattr(self, "realtime"))  # paced: the stream is already playing
        if warm.latent_dims:  # OSC's latent feed and latent edits run encode -> decode: warm those methods too
            warm.latent_sink = _discard_latent
            times += _warm_up(warm, c.period, paced=hasattr(self, "realtime"))
        engine = StreamEngine(model, method, c.block, self.sample_rate, self.channels, self.channels, c.resample_quality)
        engine.latent_sink = self.latent_sink
        log.info("warm-up: %d blocks, compute median %.2f ms, p99 %.2f ms per %.2f ms block",
                 len(times), 1000 * np.median(times), 1000 * np.percentile(times, 99),
                 1000 * engine.block / engine.model_rate)
        return Controlled(engine, self.controls, self._model_controls), float(np.percentile(times, 99))

    def _recall_preset(self, method: str) -> str:
        """Apply --preset to the controls before the engine is built; return the method to run.

        That is the preset's method, unless --method names one.
        """
        c = self.config
        if c.preset is None:
            return method
        library = PresetLibrary(c.presets_dir or default_presets_dir())
        if c.preset == AUTOSAVE_NAME and AUTOSAVE_NAME not in library.names():
            log.info("no preset '%s' in %s yet: starting from the defaults", AUTOSAVE_NAME, library.files.directory)
            return method
        for reason in library.load(c.preset, self.controls, source=None).skipped:
            log.warning("preset %s: %s", c.preset, reason)
        if "method" not in self.controls.specs:
            return method
        if c.method is not None:  # --method wins over the preset's
            self.controls.set("method", method, source=None)
        return self.controls.get("method")

    def set_latent_sink(self, sink: LatentSink | None) -> None:
        """Hand the latent frames of the running engine (and of every swapped-in one) to `sink`; None: stop."""
        self.latent_sink = sink
        self.realtime.processor.engine.latent_sink = sink

    def _audio_settings(self) -> AudioSettings:
        c = self.config
        return AudioSettings(
            sample_rate=self.sample_rate, channels=self.channels, period=c.period,
            input_device=c.input_device, output_device=c.output_device,
            input_file=c.input_file, output_file=c.output_file, use_device=self._use_device,
        )

    def _on_control(self, change) -> None:
        running = self.realtime.processor.engine.method
        if change.name == "method" and change.source is not None and change.value != running:

            def put_back_on_failure(error: str | None) -> None:
                if error is not None:  # clients see what actually plays
                    self.controls.set("method", running, source=None)

            self.load_model(self.model_path, change.value, put_back_on_failure)

    @contextlib.contextmanager
    def _worker_scope(self):
        """The worker thread's whole life: denormals flushed, memory locked, gradients off (all per thread)."""
        torch.set_flush_denormal(True)
        if self.config.realtime:
            lock_memory()
        with torch.inference_mode():
            yield

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        import sys

        sys.setswitchinterval(SWITCH_INTERVAL)
        # A full collection of the ~170k objects torch and the model leave behind holds the GIL for ~100 ms
        # (measured): the callback and the worker would miss their periods. Frozen, they are never scanned
        # again, and the collections that still happen only see objects made since.
        gc.collect()
        gc.freeze()
        self.realtime.start()
        try:
            self.audio.start()
        except RaveliveError:
            self.realtime.close()
            raise
        self._started = time.monotonic()

    def stop(self) -> None:
        """Stop the audio (files closed) and the worker; safe to call twice."""
        self.audio.stop()
        self.realtime.close()
        # Undo start()'s freeze: frozen objects are never collected, so the server's reference cycles (and the
        # soxr resamplers they hold) would outlive the interpreter, and nanobind prints ~17 lines of "leaked"
        # objects at exit. Unfrozen, the next collection (at the latest the one at exit) frees them.
        gc.unfreeze()

    @property
    def latency(self) -> int:
        return self.realtime.latency

    def status(self) -> dict[str, Any]:
        """A snapshot of what plays and how well; never blocks."""
        processor = self.realtime.processor
        median, p99 = self.realtime.compute.summary()
        block_seconds = self.realtime.compute.block_seconds
        counters = self.realtime.counters
        return {
            "model": str(self.model_path),
            "method": processor.engine.method,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "period": self.config.period,
            "block": processor.engine.block,
            "latency": self.latency,
            "latency_ms": 1000 * self.latency / self.sample_rate,
            "margin": self.realtime.config.margin,
            "cpu_load": median / block_seconds,
            "late_blocks": counters.late_blocks,
            "startup_late_blocks": counters.startup_late_blocks,
            "xruns": counters.xruns,
            "callback_errors": counters.callback_errors,
            "model_errors": counters.model_errors,
            "dropped_frames": counters.dropped_frames,
            "compute_ms_median": 1000 * median,
            "compute_ms_p99": 1000 * p99,
            "block_ms": 1000 * block_seconds,
            "uptime": time.monotonic() - self._started if self._started else 0.0,
            "audio": self.audio.description,
        }

    def describe_start(self) -> str:
        s = self.status()
        return (
            f"serving {s['model']} ({s['method']}) at {s['sample_rate']} Hz x {s['channels']} on {s['audio']}; "
            f"block {s['block']}, period {s['period']}; latency {s['latency']} samples = {s['latency_ms']:.1f} ms "
            f"(engine {s['latency'] - s['margin']} + margin {s['margin']})"
        )

    def stats_line(self) -> str:
        s = self.status()
        return (
            f"{s['uptime']:.0f}s load {100 * s['cpu_load']:.0f}% compute {s['compute_ms_median']:.1f}/"
            f"{s['compute_ms_p99']:.1f} ms (median/p99 of {s['block_ms']:.1f}) late {s['late_blocks']} "
            f"(start-up {s['startup_late_blocks']}) "
            f"xruns {s['xruns']} callback errors {s['callback_errors']} model errors {s['model_errors']}"
        )

    # -- hot swap --------------------------------------------------------------------------

    def swap_model(self, model: str | Path | NNModel | None = None, method: str | None = None) -> None:
        """Load (or take) a model, warm it up off the audio path, then crossfade to it; the stream never stops.

        Known cost: torch.jit.load holds the GIL for its whole run (about 0.1-0.2 s for the default model
        here), and the audio callback is Python, so a load longer than the margin shows up as counted late
        blocks (the dry fallback plays, latency unchanged, no input lost).
        """
        with self._swap_lock:
            if isinstance(model, NNModel):
                path, loaded = model.path, model
            else:
                path = Path(model) if model is not None else self.model_path
                loaded = NNModel.load(path)
            probe = StreamEngine(loaded, method, self.config.block, self.sample_rate, self.channels)
            controls = ModelControls.from_model(loaded, method=probe.method)
            controls.install(self.controls)
            self._model_controls = controls
            processor, p99 = self._prepare(loaded, probe.method)
            gc.freeze()  # the new model's objects too (see start)
            periods = math.ceil(self.realtime.config.margin / self.config.period)  # see margin_from_compute
            budget = periods * self.config.period / self.sample_rate
            if p99 > budget:
                log.warning("the new model needs %.1f ms per block (p99), more than the %.1f ms margin: "
                            "expect late blocks; restart with a larger --latency-margin", 1000 * p99, 1000 * budget)
            self.realtime.swap(processor, int(CROSSFADE_SECONDS * self.sample_rate))
            self.model_path = Path(path)

    def load_model(self, path: str | Path, method: str | None = None,
                   done: Callable[[str | None], None] | None = None) -> None:
        """Hot-swap to `path` in the background; `done(None)` or `done(message)` when finished."""
        threading.Thread(target=self._swap_then, args=(path, method, done), name="ravelive-swap", daemon=True).start()

    def reload_model(self, done: Callable[[str | None], None] | None = None) -> None:
        """Re-read the current model file (e.g. after an export) and hot-swap to it."""
        self.load_model(self.model_path, self.realtime.processor.engine.method, done)

    def _swap_then(self, path, method, done) -> None:
        try:
            self.swap_model(path, method)
        except RaveliveError as error:
            log.error("%s", error)
            message = str(error)
        except Exception as error:  # noqa: BLE001 - the caller (an OSC client) must get an answer, the audio goes on
            log.exception("loading %s failed", path)
            message = f"{path}: loading failed ({type(error).__name__}: {error}); check the file with `ravelive info`"
        else:
            message = None
        if done is not None:
            done(message)


def _use_device(config: ServeConfig) -> bool:
    """Whether to open a sound card (else the clock paces the files); AudioDeviceError when neither exists."""
    if "none" in (config.input_device, config.output_device):
        return False
    if has_output_device():
        return True
    if config.input_file or config.output_file:
        return False
    raise AudioDeviceError(
        "no sound card found (PortAudio lists no output device); plug one in or start JACK, "
        "or run without one: --input FILE (looped as live input) and/or --output FILE (records)"
    )


def _discard_latent(frames: np.ndarray) -> None:
    """The warm-up's latent sink: the frames go nowhere."""


def _warm_up(engine: StreamEngine, period: int, paced: bool) -> list[float]:
    """Push silence through `engine` in periods; return the compute time of each timed model block.

    Blocks come at the stream's pace (a rest after each one), as they will live: a model called once per
    block starts each with cold caches and takes longer than back to back (+10% to +40% measured here),
    and `--latency-margin auto` must see that. `paced` (a hot swap beside the running stream): rest at
    least as long as each block took, so the warm-up never takes more than half a core, or the GIL,
    from the live worker.
    """
    blocks = WARMUP_UNTIMED + max(8, math.ceil(WARMUP_SECONDS * engine.model_rate / engine.block))
    stream_block = max(1, engine.block * engine.sample_rate // engine.model_rate)
    block_seconds = engine.block / engine.model_rate
    silence = np.zeros((engine.channels, period), dtype=np.float32)
    times, spent, pushed = [], 0.0, 0
    while len(times) < blocks:
        started = time.perf_counter()
        engine.push(silence)
        spent += time.perf_counter() - started
        pushed += period
        if pushed >= stream_block:
            times.append(spent)
            time.sleep(max(block_seconds - spent, spent if paced else 0.0))
            spent, pushed = 0.0, pushed - stream_block
    return times[WARMUP_UNTIMED:]


def _ring_frames(latency: int, sample_rate: int) -> int:
    """A ring that holds four latencies and at least two seconds, as a power of two."""
    return 1 << max(4 * latency, 2 * sample_rate).bit_length()


def run(config: ServeConfig, report: Callable[[str], None]) -> dict[str, Any]:
    """Serve until --duration, SIGINT or SIGTERM; report the start line, stats, summary; return the status."""
    server = Server(config)
    stop = StopRequest()
    previous = {}
    control = autosave = None
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda number, frame: stop.request())
    try:
        server.start()
        if config.preset == AUTOSAVE_NAME:  # an installation resumes where it was left, after a power cut too
            library = PresetLibrary(config.presets_dir or default_presets_dir())
            autosave = Autosave(library, server.controls, str(server.model_path)).start()
        report(server.describe_start())
        if config.osc is not None:
            control = ControlService.start(server, config.osc, config.discovery)
            push_latent = control.osc.push_latent  # /ravelive/latent/out, while a client subscribes to it
            control.osc.feedback.on_latent_wanted = lambda wanted: server.set_latent_sink(push_latent if wanted else None)
            report(control.describe())
        notify("READY=1")
        _serve_until(server, config, stop, report)
    finally:
        notify("STOPPING=1")
        if control is not None:
            server.set_latent_sink(None)
            control.close()
        server.stop()
        if autosave is not None:
            autosave.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop.close()
    status = server.status()
    report("summary: " + server.stats_line() + f"; latency {status['latency']} samples")
    return status


class StopRequest:
    """SIGINT/SIGTERM's way to stop `run`: a pipe, because a signal handler must not take a lock.

    (A threading.Event set from a handler deadlocks when the signal lands while the main thread
    holds that Event's own lock inside `wait`.)
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def request(self) -> None:
        """Ask `run` to stop; safe inside a signal handler."""
        with contextlib.suppress(BlockingIOError):  # full: a stop is already pending
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; True once a stop was requested."""
        readable, _, _ = select.select([self._read], [], [], timeout)
        return bool(readable)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def _serve_until(server: Server, config: ServeConfig, stop: StopRequest, report: Callable[[str], None]) -> None:
    """Wait for the stop, print stats every stats_interval, feed systemd's watchdog while audio runs."""
    now = time.monotonic()
    deadline = now + config.duration if config.duration else math.inf
    watchdog = watchdog_interval()
    next_stats = now + config.stats_interval if config.stats_interval else math.inf
    next_ping = now + watchdog if watchdog else math.inf
    periods = -1
    while not stop.wait(0.0):
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_stats:
            report(server.stats_line())
            next_stats += config.stats_interval
        if now >= next_ping:
            if server.realtime.counters.periods != periods:  # the audio moved since the last ping
                notify("WATCHDOG=1")
            periods = server.realtime.counters.periods
            next_ping += watchdog
        stop.wait(max(0.0, min(deadline, next_stats, next_ping, now + 1.0) - now))


def validate_margin(text: str) -> float | None:
    """`--latency-margin` value: milliseconds, or `auto` (None)."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"--latency-margin {text!r} is neither 'auto' nor a number of milliseconds >= 0; "
                          f"give e.g. 10 or auto")
    return value
