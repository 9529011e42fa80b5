"""CV and gate jacks around the model's processor, on the realtime worker.

The device runs the model's audio channels plus the CV jacks above them
(ravelive.control.cv). `CvStage` is a Processor: `push(x[device_ch, n])`
hands the CV inputs to the shared `CvSignals`, pushes the audio channels
through the model's processor, and returns its output with the CV outputs
beside it, the same length and on the same timeline (output j belongs at
input j + latency, like the audio).

The worker never writes the ParameterStore: `CvSignals` publishes the
smoothed reading of every CV input and counts gate edges (threshold and
hysteresis in volts), then wakes the CV control thread
(ravelive.control.cv_control), which maps the readings onto parameters and
runs gate actions. During a hot swap's crossfade the old and the new
processor receive the very same input array; the signals analyse it once.

CV outputs: `level` is the model output's envelope (RMS per push, a
one-pole follower, ramped across the push: no steps); `latent/N` holds each
latent frame of the running encode (caught by `LatentTap` on the engine's
latent sink) for its share of the push's output, as DC.
"""

import logging
import math
import os
import select

import numpy as np

from ravelive.control.cv import CvConfig
from ravelive.engine.realtime import Processor

log = logging.getLogger(__name__)

LEVEL_RELEASE_SECONDS = 0.1  # the level CV falls with this time constant (rises as fast as the pushes come)


class CvSignals:
    """What the worker reads off the CV and gate inputs, for the CV control thread.

    Plain numbers, each written by one thread: `readings[i]` (the smoothed sample value of
    `config.inputs[i]`), `rising[g]` / `falling[g]` / `high[g]` (edges counted and state of
    `config.gates[g]`), `pushes`. The control thread writes `writes` and `actions`.
    """

    def __init__(self, config: CvConfig, sample_rate: int) -> None:
        self.config = config
        calibration = config.calibration
        self.readings = np.zeros(len(config.inputs))
        self.rising = [0] * len(config.gates)
        self.falling = [0] * len(config.gates)
        self.high = [False] * len(config.gates)
        self.pushes = 0
        self.writes = 0  # control thread: parameter writes made from CV inputs
        self.actions = 0  # control thread: gate actions run
        self._inputs = [jack.channel - 1 for jack in config.inputs]
        self._gates = [jack.channel - 1 for jack in config.gates]
        self._open = [calibration.gate_threshold / calibration.input(jack.channel).volts_full_scale
                      for jack in config.gates]
        self._close = [(calibration.gate_threshold - calibration.gate_hysteresis)
                       / calibration.input(jack.channel).volts_full_scale for jack in config.gates]
        self._tau = calibration.smoothing_ms / 1000 * sample_rate  # samples
        self._last: np.ndarray | None = None  # the last array analysed (a crossfade pushes it twice)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def analyse(self, x: np.ndarray) -> None:
        """Worker: take in one push of device input [device_ch, n] (again during a crossfade: ignored)."""
        if x is self._last or not x.shape[1]:
            return
        self._last = x
        n = x.shape[1]
        if self._inputs:
            means = x[self._inputs].mean(axis=1)
            if not self.pushes or not self._tau:
                self.readings[:] = means
            else:
                self.readings += (1.0 - math.exp(-n / self._tau)) * (means - self.readings)
        for g, channel in enumerate(self._gates):
            self._gate(g, x[channel])
        self.pushes += 1
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # the control thread has wake-ups pending already

    def _gate(self, g: int, signal: np.ndarray) -> None:
        """A Schmitt trigger over one push: the state after each sample above `open` or below `close`."""
        above, below = signal > self._open[g], signal < self._close[g]
        events = above[above | below]  # True: opens (or stays open), False: closes
        if not len(events):
            return
        states = np.concatenate(([self.high[g]], events))
        changes = np.diff(states.astype(np.int8))
        self.rising[g] += int(np.count_nonzero(changes == 1))
        self.falling[g] += int(np.count_nonzero(changes == -1))
        self.high[g] = bool(events[-1])

    def wait(self, timeout: float) -> None:
        """Control thread: sleep until the worker analysed another push, or `timeout` seconds."""
        readable, _, _ = select.select([self._wake_read], [], [], timeout)
        if readable:
            os.read(self._wake_read, 4096)

    def close(self) -> None:
        """Release the wake-up pipe (after the worker and the control thread have stopped); idempotent."""
        if self._wake_read >= 0:
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1


class LatentTap:
    """A latent sink that keeps the frames of the push in progress (the worker pushes one engine at a time)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, frames: np.ndarray) -> None:
        self.frames.append(frames.copy())  # valid only during the call

    def take(self) -> np.ndarray | None:
        """Every frame since the last take, [dims, frames], or None."""
        if not self.frames:
            return None
        taken = self.frames[0] if len(self.frames) == 1 else np.concatenate(self.frames, axis=1)
        self.frames.clear()
        return taken


class CvStage:
    """A Processor: the model's processor on the audio channels, CV in and out on the others."""

    def __init__(self, inner: Processor, signals: CvSignals, audio_channels: int, device_channels: int,
                 sample_rate: int, latent_dims: int = 0, tap: LatentTap | None = None) -> None:
        self.inner = inner
        self.latency = inner.latency
        self.step = inner.step
        self._signals = signals
        self._audio = audio_channels
        self._channels = device_channels
        self._tap = tap
        config = signals.config
        self._outputs = []  # (row, latent dimension or None, minimum, maximum, calibration)
        for jack in config.outputs:
            dimension = jack.latent
            if dimension is not None and dimension >= latent_dims:
                log.warning("--cv-out %d=%s: this model has %d latent dimension(s); the jack holds its last "
                            "value", jack.channel, jack.source, latent_dims)
                dimension = -1
            self._outputs.append((jack.channel - 1, dimension, jack.minimum, jack.maximum,
                                  config.calibration.output(jack.channel)))
        self._held = {jack.channel: jack.minimum for jack in config.outputs}  # last value of each output
        self._level = 0.0
        self._release = LEVEL_RELEASE_SECONDS * sample_rate

    def frames_wanted(self) -> int:
        return self.inner.frames_wanted()

    def push(self, x: np.ndarray) -> np.ndarray:
        self._signals.analyse(x)
        if self._tap is not None:
            self._tap.frames.clear()  # frames of another engine's push (a crossfade's other half) are not ours
        y = self.inner.push(x[: self._audio])
        if self._channels == self._audio:
            return y
        m = y.shape[1]
        out = np.zeros((self._channels, m), dtype=np.float32)
        out[: self._audio] = y
        if not m:
            return out
        latent = self._tap.take() if self._tap is not None else None
        for row, dimension, minimum, maximum, calibration in self._outputs:
            if dimension is None:
                values = self._level_ramp(y, m)
            elif dimension >= 0 and latent is not None:
                values = latent[dimension, np.arange(m) * latent.shape[1] // m]  # each frame held for its share
            else:
                values = np.full(m, self._held[row + 1])
            self._held[row + 1] = float(values[-1])
            unit = np.clip((values - minimum) / (maximum - minimum), 0.0, 1.0)
            out[row] = (calibration.low + unit * (calibration.high - calibration.low)) / calibration.volts_full_scale
        return out

    def _level_ramp(self, y: np.ndarray, m: int) -> np.ndarray:
        """The envelope: RMS of this push, rising at once, falling with LEVEL_RELEASE_SECONDS; ramped over it."""
        start = self._level
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
        self._level = rms if rms > start else start + (1.0 - math.exp(-m / self._release)) * (rms - start)
        return np.linspace(start, self._level, m + 1)[1:]
