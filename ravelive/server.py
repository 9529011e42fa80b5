"""`ravelive serve`: a model, its engine, the realtime scheduler and the audio, kept running.

`Server(config)` loads the model, warms it up (which also measures the
compute time per block that `--latency-margin auto` needs), and wires
StreamEngine -> OutputStage (engine/output.py: input gain, wet/dry, latents and
attributes from the control store, the NaN guard) into the realtime worker,
and the worker into the audio path, whose C callback applies the DC blocker,
the output gain and the true-peak limiter. Model and
method changes go through engine/swap.py's ModelSwapper.
`ravelive.daemon.run()` adds what the process needs around it: the
control services, signals, `--duration`, periodic stats and the summary.

The control layer uses `status()`, `load_model()`, `reload_model()`
(asynchronous hot swaps) and `controls` (the ParameterStore whose snapshot
the worker applies once per chunk).
"""

import contextlib
import gc
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ravelive.audio import AudioPath, AudioSettings, check_device, device_period, device_sample_rate, has_output_device
from ravelive.config import DEFAULT_PERIOD, ServeConfig, default_threads
from ravelive.control.model_params import ALLOW_CONTROL_OUTPUT, OUTPUT_GAIN, ControlSnapshot, ModelControls
from ravelive.control.named_files import NamedFiles
from ravelive.control.params import Change, ParameterStore
from ravelive.control.presets import AUTOSAVE_NAME, LOOP_PLAY, PresetLibrary, default_presets_dir
from ravelive.dsp.limiter import CEILING_DBTP
from ravelive.engine.cv_stage import CvSignals, CvStage, LatentTap
from ravelive.engine.latent_fanout import LatentFanout
from ravelive.dsp.smoothing import db_to_gain
from ravelive.engine.output import RAMP_SECONDS, NonFiniteBurst, OutputStage, SafetyCounters
from ravelive.engine.realtime import AUDIO_PRIORITY, Processor, Realtime, RealtimeConfig, lock_memory
from ravelive.engine.stream import LatentSink, StreamEngine
from ravelive.engine.swap import Done, EngineSettings, ModelSwapper
from ravelive.engine.warmup import auto_margin
from ravelive.errors import AudioDeviceError, ConfigError, ParameterError
from ravelive.generation.prior_file import has_trained_prior
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel

log = logging.getLogger(__name__)

STARTUP_SECONDS = 0.5  # late periods this soon after the stream starts are counted apart (JACK's first cycles)
SWITCH_INTERVAL = 0.001  # seconds a Python thread may hold the GIL while the model worker waits for it


class Server:
    """The running daemon; see the module docstring."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._use_device = _use_device(config)  # first: a missing sound card is reported before the model loads
        torch.set_num_threads(config.threads or default_threads())
        torch.set_flush_denormal(True)
        model = NNModel.load(Path(config.model) if config.model else DEFAULT_MODEL_PATH)
        self.sample_rate = config.sample_rate or self._device_rate() or model.sample_rate or 48000
        self.period = config.period or self._device_period() or DEFAULT_PERIOD
        probe = StreamEngine(model, config.method, config.block, self.sample_rate, config.channels)
        _check_audio_output(model, probe.method, config.allow_control_output, "--allow-control-output")
        self.channels = probe.channels
        # CV and gate jacks (ravelive.control.cv) are device channels above the audio ones
        self.device_channels = config.cv.device_channels(self.channels) if config.cv else self.channels
        check_device(self._audio_settings())  # before the warm-up: a rate JACK cannot run fails at once
        self.cv_signals = CvSignals(config.cv, self.sample_rate) if config.cv else None
        self._latents = LatentFanout()  # the engines' one latent sink: OSC's latent feed and the CV outputs
        self._cv_tap = LatentTap() if config.cv and config.cv.latent_outputs else None
        self._latents.attach("cv", self._cv_tap)
        self.safety = SafetyCounters()  # NaN/Inf counts of every stage this server builds, across swaps
        self.on_error: Callable[[str, str], None] | None = None  # (address, message) to clients: run() sets OSC's
        self._reloading = False  # a reload asked for by a NaN burst is under way
        self._memory_locked = False  # by the first thread entering the worker scope
        self.controls: ParameterStore[ControlSnapshot] = ModelControls.from_model(
            model, method=probe.method, allow_control_output=config.allow_control_output,
            prior=(config.prior is not None or has_trained_prior(model)) and probe.latent_dims > 0).store()
        settings = EngineSettings(self.sample_rate, self.channels, self.period, config.block, config.resample_quality,
                                  config.prior)
        method = self._recall_preset(probe.method)  # before any model plays: nothing can hot-swap yet
        self.swapper = ModelSwapper(settings, self.controls, self._make_processor, admit=self._admit)
        self.swapper.set_latent_sink(self._latents if self._latents.active else None)
        first = self.swapper.prepare(model, method)
        if config.latency_margin_ms is None:
            margin = auto_margin(first.p99, first.engine, first.processor, self.sample_rate, self.period,
                                 config.limiter)
        else:
            margin = math.ceil(config.latency_margin_ms * self.sample_rate / 1000)  # Realtime: whole periods
        self.realtime = Realtime(
            first.processor,
            RealtimeConfig(
                sample_rate=self.sample_rate, channels=self.device_channels, period=self.period,
                block=first.engine.block * self.sample_rate // first.engine.model_rate,
                margin=margin, ring_frames=_ring_frames(first.processor.latency + margin, self.sample_rate),
                fallback=config.fallback, startup=round(STARTUP_SECONDS * self.sample_rate),
                gain_ramp=max(1, int(RAMP_SECONDS * self.sample_rate)), audio_channels=self.channels,
                limiter=config.limiter,
            ),
        )
        # gain/out is applied by the C callback as each period plays, before its limiter (engine/output.py)
        self.realtime.native.set_gain(db_to_gain(self.controls.get(OUTPUT_GAIN)))
        self.controls.add_listener(self._follow_output_gain)
        self.realtime.worker_scope = self._worker_scope
        self.realtime.follow_audio_priority = config.realtime
        self.swapper.attach(self.realtime, first)
        if config.preload and config.osc is not None and config.osc.models_dir is not None:
            models = NamedFiles(config.osc.models_dir, ".ts", "model")
            self.swapper.preload([models.existing(name) for name in models.names()])
        self.audio = AudioPath(self._audio_settings(), self.realtime.native)
        self._started = 0.0
        self.midi_status: Callable[[], dict[str, Any]] | None = None  # MidiService.status while MIDI runs

    def _follow_output_gain(self, change: Change) -> None:
        if change.name == OUTPUT_GAIN:
            self.realtime.native.set_gain(db_to_gain(change.value))

    def _make_processor(self, engine: StreamEngine, controls: ModelControls) -> Processor:
        """What every model (the first and each swapped-in one) plays through: its OutputStage, inside the CV jacks."""
        stage = OutputStage(engine, self.controls, controls, fallback=self.config.fallback, counters=self.safety,
                            on_nonfinite=self._on_nonfinite)
        if self.cv_signals is None:
            return stage
        return CvStage(stage, self.cv_signals, self.channels, self.device_channels, self.sample_rate,
                       engine.latent_dims, self._cv_tap)

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

    def _admit(self, model: NNModel, method: str) -> None:
        """A swap refuses a method whose output is not audio unless the store allows it."""
        _check_audio_output(model, method, self.controls.get(ALLOW_CONTROL_OUTPUT), "/ravelive/allow_control_output 1")

    def _on_nonfinite(self, burst: NonFiniteBurst) -> None:
        """Worker thread, once per burst of NaN/Inf model output: tell the clients; reload a model without reset()."""
        if self.on_error is not None:
            self.on_error("/ravelive/status/nonfinite_blocks", burst.message(self.config.fallback))
        if burst.reset or self._reloading:
            return
        self._reloading = True

        def reloaded(error: str | None) -> None:
            self._reloading = False
            if error is not None and self.on_error is not None:
                self.on_error("/ravelive/model/reload", f"reloading after NaN/Inf output failed: {error}")

        self.reload_model(reloaded)

    def _device_rate(self) -> int | None:
        """The output device's own rate (JACK's is fixed, others' the default): streams run at it unless told."""
        return device_sample_rate(self.config.output_device) if self._use_device else None

    def _device_period(self) -> int | None:
        """A JACK server's own period (the only one it runs); None for devices that take any."""
        return device_period(self.config.output_device) if self._use_device else None

    def _audio_settings(self) -> AudioSettings:
        c = self.config
        return AudioSettings(
            sample_rate=self.sample_rate, channels=self.device_channels, period=self.period,
            input_device=c.input_device, output_device=c.output_device,
            input_file=c.input_file, output_file=c.output_file, record_seconds=c.record_seconds,
            use_device=self._use_device,
            audio_priority=AUDIO_PRIORITY if c.realtime else 0,
        )

    @contextlib.contextmanager
    def _worker_scope(self):
        """The worker thread's whole life: denormals flushed, memory locked, gradients off (all per thread)."""
        torch.set_flush_denormal(True)
        if self.config.realtime and not self._memory_locked:  # mlockall is per process: once is enough
            self._memory_locked = True
            lock_memory()
        with torch.inference_mode():
            yield

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        # A full collection of the ~170k objects torch and the model leave behind holds the GIL for ~100 ms
        # (measured): the callback and the worker would miss their periods. Frozen, they are never scanned
        # again, and the collections that still happen only see objects made since.
        gc.collect()
        gc.freeze()
        self.realtime.start()
        self.audio.start()  # on failure the caller's stop() ends the worker
        self._started = time.monotonic()

    def stop(self) -> None:
        """Stop the audio (files closed), the swaps and the worker; safe to call twice."""
        self.audio.stop()
        self.swapper.stop()
        self.realtime.close()
        if self.cv_signals is not None:
            self.cv_signals.close()
        # Undo start()'s freeze: frozen objects are never collected, so the server's reference cycles (and the
        # soxr resamplers they hold) would outlive the interpreter, and nanobind prints ~17 lines of "leaked"
        # objects at exit. Unfrozen, the next collection (at the latest the one at exit) frees them.
        gc.unfreeze()

    @property
    def latency(self) -> int:
        return self.realtime.latency

    @property
    def model_path(self) -> Path:
        """The file now playing."""
        return self.swapper.playing.path

    def status(self) -> dict[str, Any]:
        """A snapshot of what plays and how well; never blocks."""
        playing = self.swapper.playing
        median, p99 = self.realtime.compute.summary()
        block_seconds = self.realtime.compute.block_seconds
        counters = self.realtime.counters
        return {
            "model": str(playing.path),
            "method": playing.method,
            "sample_rate": self.sample_rate,
            "model_sample_rate": playing.engine.model_rate,
            "channels": self.channels,
            "period": self.period,
            "block": playing.engine.block,
            "latency": self.latency,
            "latency_ms": 1000 * self.latency / self.sample_rate,
            "margin": self.realtime.margin,  # the compute budget, whole periods
            "alignment": self.latency - self.realtime.margin,  # the rest of the latency (engine and schedule)
            "cpu_load": median / block_seconds,
            "late_blocks": counters.late_blocks,
            "late_periods": counters.late_periods,
            "startup_late_blocks": counters.startup_late_blocks,
            "startup_late_periods": counters.startup_late_periods,
            "xruns": counters.xruns,
            "callback_errors": counters.callback_errors,
            "model_errors": counters.model_errors,
            "dropped_frames": counters.dropped_frames,
            "nonfinite_blocks": self.safety.nonfinite_blocks,
            "nonfinite_inputs": self.safety.nonfinite_inputs,
            "limiter": self.config.limiter,
            "limiter_gain_db": 20 * math.log10(max(self.realtime.native.limiter_gain, 1e-6)),
            "compute_ms_median": 1000 * median,
            "compute_ms_p99": 1000 * p99,
            "block_ms": 1000 * block_seconds,
            "uptime": time.monotonic() - self._started if self._started else 0.0,
            "audio": self.audio.description,
            **self.audio.health(),  # audio_state (running | lost | reopening | stopped), device_losses, device_reopens
            "preloaded_models": self.swapper.preloaded,
            **self._cv_status(),
        } | (self.midi_status() if self.midi_status is not None else {})

    def _cv_status(self) -> dict[str, Any]:
        """CV counters: parameter writes from CV inputs, gate edges seen, gate actions run (none without CV)."""
        signals = self.cv_signals
        if signals is None:
            return {}
        return {"cv_writes": signals.writes, "gate_edges": sum(signals.rising), "gate_actions": signals.actions}

    def describe_start(self) -> str:
        s = self.status()
        lookahead = self.realtime.lookahead
        resampled = "" if s["model_sample_rate"] == s["sample_rate"] else \
            f" (resampled from the model's {s['model_sample_rate']} Hz)"
        jacks = f" + CV jacks {', '.join(map(str, sorted(self.config.cv.channels)))}" if self.config.cv else ""
        return (
            f"serving {s['model']} ({s['method']}) at {s['sample_rate']} Hz{resampled} x {s['channels']}{jacks} "
            f"on {s['audio']}; "
            f"block {s['block']}, period {s['period']}; latency {s['latency']} samples = {s['latency_ms']:.1f} ms "
            f"(alignment {s['alignment']} + margin {s['margin']}); "
            + (f"output: DC blocker, limiter {CEILING_DBTP:g} dBTP (its {lookahead}-sample lookahead is in the "
               f"alignment)" if self.config.limiter else "output: no DC blocker, no limiter (--no-limiter)")
        )

    def stats_line(self) -> str:
        s = self.status()
        return (
            f"{s['uptime']:.0f}s load {100 * s['cpu_load']:.0f}% compute {s['compute_ms_median']:.1f}/"
            f"{s['compute_ms_p99']:.1f} ms (median/p99 of {s['block_ms']:.1f}) late {s['late_blocks']} "
            f"(start-up {s['startup_late_blocks']}) late periods {s['late_periods']} "
            f"xruns {s['xruns']} callback errors {s['callback_errors']} model errors {s['model_errors']} "
            f"non-finite {s['nonfinite_blocks']}"
        )

    # -- what the control layer changes ---------------------------------------------------------

    def swap_model(self, model: str | Path | NNModel | None = None, method: str | None = None) -> None:
        """Load (or take) a model, warm it up off the audio path, then crossfade to it (RaveliveError if not).

        torch.jit.load holds the GIL for its whole run (see engine/swap.py): the C audio callback goes on, the
        worker waits, so a load longer than the margin shows as counted late blocks (--preload avoids it).
        """
        self.swapper.swap(model, method)

    def load_model(self, path: str | Path, method: str | None = None, done: Done | None = None) -> None:
        """Hot-swap to `path` in the background, after any change already asked for; then `done(None | message)`."""
        self.swapper.request(path, method, done)

    def reload_model(self, done: Done | None = None) -> None:
        """Re-read the playing model file (e.g. after an export) and hot-swap to it."""
        self.swapper.request(None, None, done)

    def latent_dims(self) -> int:
        """The playing model's latent size (0: it has no encode -> decode latent path)."""
        return self.swapper.playing.engine.latent_dims

    def play_latents(self, frames: np.ndarray) -> None:
        """Make `frames` [dims, n] the playing engine's latent loop and play it (a swap starts an empty loop)."""
        engine = self.swapper.playing.engine
        if not engine.latent_dims or frames.shape[0] != engine.latent_dims:
            raise ParameterError(f"a latent sequence of {frames.shape[0]} dimensions cannot play on "
                                 f"{self.swapper.playing.path.name}, whose latent has {engine.latent_dims}")
        engine.latent_clip = frames
        self.controls.update({LOOP_PLAY: True}, source=None)

    def set_latent_sink(self, sink: LatentSink | None) -> None:
        """Hand the latent frames of the running engine (and of every swapped-in one) to `sink`; None: stop."""
        self._latents.attach("osc", sink)
        self.swapper.set_latent_sink(self._latents if self._latents.active else None)


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


def _check_audio_output(model: NNModel, method: str, allowed: bool, how: str) -> None:
    """ConfigError when `method`'s output is not audio and playing it was not asked for (`how` says how)."""
    spec = model.methods[method]
    if not spec.outputs_audio and not allowed:
        raise ConfigError(f"method '{method}' of {model.path.name} outputs {spec.describe_output()}, not audio "
                          f"(played, it is held DC); give {how} to play it anyway")


def _ring_frames(latency: int, sample_rate: int) -> int:
    """A ring that holds four latencies and at least two seconds, as a power of two."""
    return 1 << max(4 * latency, 2 * sample_rate).bit_length()
