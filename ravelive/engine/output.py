"""The output stage: a StreamEngine with the controls applied and its output made safe for a DAC.

`OutputStage` is the realtime Processor that `ravelive serve` schedules. Per
push, on the worker thread:

    input x [ch, n]   input gain (GainRamp) on a copy; a non-finite sample there (from the input, or
                      from the gain overflowing) is zeroed in both: a broken driver, file or fader must
                      not poison the model's state
      -> x into the dry FIFO (kept until the engine's output for it is out: wet/dry, the NaN fallback)
      -> the gained copy into StreamEngine.push
    engine output     the NaN/Inf guard: a chunk with any non-finite sample is replaced by the fallback
                      (the latency-aligned dry input, or silence), faded in and out, counted, and the
                      model's streaming state is reset (its own reset(), or `on_nonfinite` reloads it)
      -> wet/dry mix against the dry

The DC blocker, the output gain and the true-peak limiter are not applied here: the C callback applies
them as each period plays (dsp/dc_blocker.py; `CallbackState.set_gain`, set by the server as gain/out
changes; dsp/limiter.py), so a fader or a boost is heard in the next period rather than after the model's
next block, limited, and all three act on a late block's fallback too. (Here, where each block starts
with cold caches, the numpy DC blocker cost 150-400 us a block; the C one costs a few us a period.)

Output sample j of the stage is the response to input sample j, and it is out once input j + `latency`
has been pushed: `latency` is the engine's.

The guard replaces the model's output, not the final mix, so the gains still
apply: a muted output stays muted while the dry input stands in.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ravelive.control.model_params import AttributeApplier, ControlSnapshot, ModelControls
from ravelive.control.params import ParameterStore
from ravelive.dsp.fifo import AudioFifo
from ravelive.dsp.smoothing import GainRamp, WetDryMix
from ravelive.engine.realtime import FALLBACKS
from ravelive.engine.stream import StreamEngine
from ravelive.errors import ConfigError

log = logging.getLogger(__name__)

RAMP_SECONDS = 0.01  # gain and wet/dry changes glide over this long
FADE = 64  # samples of the fades into and out of the NaN fallback (as the late-block fallback's)


@dataclass
class SafetyCounters:
    """Counts shared by every stage a server builds (they outlive hot swaps); written by the worker only."""

    nonfinite_blocks: int = 0  # engine output chunks (model blocks) with NaN/Inf, replaced by the fallback
    nonfinite_inputs: int = 0  # input chunks with NaN/Inf samples, zeroed before the dry FIFO and the model


@dataclass(frozen=True)
class NonFiniteBurst:
    """The start of a run of non-finite model output, as `on_nonfinite` hears of it (once per run)."""

    model: str  # the model file
    method: str
    blocks: int  # non-finite blocks so far, this one included (SafetyCounters.nonfinite_blocks)
    reset: bool  # True: the model's own reset() cleared its state; False: it has none, reload the file

    def message(self, fallback: str) -> str:
        """One line for the log and /ravelive/error."""
        instead = "the dry input" if fallback == "dry" else "silence"
        cure = "model state reset" if self.reset else "the model has no reset(): reloading it"
        return (f"{self.model} ({self.method}) output NaN/Inf: playing {instead} in its place, {cure} "
                f"(non-finite blocks so far: {self.blocks})")


class OutputStage:
    """The engine with the control snapshot applied and the output made safe, as a realtime Processor."""

    def __init__(self, engine: StreamEngine, store: ParameterStore[ControlSnapshot], controls: ModelControls,
                 fallback: str = "dry", counters: SafetyCounters | None = None,
                 on_nonfinite: Callable[[NonFiniteBurst], None] | None = None) -> None:
        if fallback not in FALLBACKS:
            raise ConfigError(f"fallback {fallback!r} is not one of {FALLBACKS}; pick one of them")
        self.engine = engine
        self.step = engine.block if engine.sample_rate == engine.model_rate else 1  # see realtime.Processor
        self.fallback = fallback
        self.counters = counters if counters is not None else SafetyCounters()
        self.on_nonfinite = on_nonfinite  # worker thread, once per burst; must not block
        self._store = store
        self._controls = controls
        self._attributes = AttributeApplier(engine.model, controls, store)
        ramp = max(1, int(RAMP_SECONDS * engine.sample_rate))
        snapshot = store.snapshot()
        self._input_gain = GainRamp(ramp, snapshot.input_gain)
        self._mix = WetDryMix(ramp, snapshot.wet)
        self._dry = AudioFifo(engine.channels, 2 * engine.latency + 4096)  # inputs whose output is not out yet
        self.latency = engine.latency
        fade = np.linspace(0.0, 1.0, FADE + 2, dtype=np.float32)[1:-1]
        self._fade_in, self._fade_out = fade, 1.0 - fade
        self._last_wet = np.zeros((engine.output_channels, 1), dtype=np.float32)  # the last model sample played
        self._replacing = False  # inside a burst of non-finite output

    def frames_wanted(self) -> int:
        return self.engine.frames_wanted()

    def push(self, x: np.ndarray) -> np.ndarray:
        snapshot = self._store.snapshot()  # one immutable snapshot per push
        if self.engine.latent_dims and snapshot.latent is not None and snapshot.latent.dims == self.engine.latent_dims:
            self.engine.latent = snapshot.latent
        if snapshot.attributes.keys() == self._controls.attribute_names.keys():  # not another model's, mid-swap
            self._attributes.apply(snapshot)
        gained = self._input_gain.apply(x.copy(), snapshot.input_gain)
        if not np.isfinite(gained).all():  # a non-finite input sample stays one after any gain: one check
            self.counters.nonfinite_inputs += 1
            x, gained = _zero_nonfinite(x), _zero_nonfinite(gained)
        self._dry.reserve(self._dry.available + x.shape[1])
        self._dry.write(x)
        wet = self.engine.push(gained)
        if not wet.shape[1]:
            return wet
        dry = self._dry.read(wet.shape[1])
        wet = self._guard(wet, dry)
        return self._mix.apply(wet, dry, snapshot.wet)

    # -- the NaN/Inf guard ---------------------------------------------------------------------

    def _guard(self, wet: np.ndarray, dry: np.ndarray) -> np.ndarray:
        """`wet`, or the fallback in its place when it holds a non-finite sample; fades at both edges."""
        if np.isfinite(wet).all():
            if self._replacing:  # recovered: fade from the fallback back to the model
                self._replacing = False
                n = min(wet.shape[1], FADE)
                wet[:, :n] = wet[:, :n] * self._fade_in[:n] + self._substitute(dry[:, :n]) * self._fade_out[:n]
            self._last_wet = wet[:, -1:].copy()
            return wet
        self.counters.nonfinite_blocks += 1
        replaced = self._substitute(dry)
        reset = self.engine.model.reset_state()  # every bad block: the input that poisoned it may go on
        if not self._replacing:  # a burst starts: fade from the last good sample, report once
            self._replacing = True
            n = min(replaced.shape[1], FADE)
            replaced[:, :n] = replaced[:, :n] * self._fade_in[:n] + self._last_wet * self._fade_out[:n]
            self._report(reset)
        self._last_wet = replaced[:, -1:].copy()
        return replaced

    def _substitute(self, dry: np.ndarray) -> np.ndarray:
        if self.fallback == "dry" and dry.shape[0] == self.engine.output_channels:
            return dry.copy()
        return np.zeros((self.engine.output_channels, dry.shape[1]), dtype=np.float32)

    def _report(self, reset: bool) -> None:
        burst = NonFiniteBurst(str(self.engine.model.path), self.engine.method, self.counters.nonfinite_blocks, reset)
        log.warning("%s", burst.message(self.fallback))
        if self.on_nonfinite is not None:
            self.on_nonfinite(burst)


def _zero_nonfinite(x: np.ndarray) -> np.ndarray:
    """A copy of `x` with every NaN and +-Inf replaced by 0."""
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
