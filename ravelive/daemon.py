"""The `ravelive serve` process around a Server: control services, signals, systemd, stats, the summary.

`run(config, report)` starts what the daemon needs beside the audio, in
an order that refuses bad input before any sound: the preset morph, MIDI
(a bad mapping file refuses to start), CV, then the Server itself, the
autosave, OSC; it serves until `--duration`, SIGINT or SIGTERM, printing
stats every `--stats` seconds and feeding systemd's watchdog while the
audio moves, then closes everything in reverse and prints the summary.
"""

import contextlib
import logging
import math
import os
import select
import signal
import threading
import time
from typing import Any, Callable

from ravelive.config import ServeConfig
from ravelive.control.cv_control import CvControl
from ravelive.control.midi.service import MidiService, preset_recall
from ravelive.control.morph import PresetMorph
from ravelive.control.osc import check_port
from ravelive.control.presets import AUTOSAVE_NAME, Autosave, PresetLibrary, default_presets_dir
from ravelive.control.service import ControlService
from ravelive.demo import with_demo
from ravelive.server import Server
from ravelive.systemd import notify, watchdog_interval

log = logging.getLogger(__name__)


def run(config: ServeConfig, report: Callable[[str], None]) -> dict[str, Any]:
    """Serve until --duration, SIGINT or SIGTERM; report the start line, stats, summary; return the status.

    With no sound card and no files, the built-in demo plays and is recorded (ravelive.demo).
    """
    config = with_demo(config, report)
    if config.osc is not None:
        check_port(config.osc)  # a busy port fails at once, not after the model's warm-up
    server = Server(config)
    stop = StopRequest()
    previous = {}
    control = midi = cv = autosave = None
    presets_dir = config.presets_dir or default_presets_dir()  # program changes, gates, morph, autosave: with or without OSC
    # The morph is the daemon's, not OSC's: a MIDI knob or a CV mapped to preset/morph moves it with --no-osc too.
    morph = PresetMorph(PresetLibrary(presets_dir), server.controls).start()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda number, frame: stop.request())
    try:
        if config.morph is not None:  # before the audio: a preset that cannot be read refuses to start
            for reason in morph.choose(*config.morph):
                log.warning("--morph %s %s: %s", *config.morph, reason)
        if config.midi is not None:  # before the audio: a bad mapping file refuses to start
            midi = MidiService.start(server.controls, config.midi, preset_recall(presets_dir, server.controls), report)
            server.midi_status = midi.status
        if config.cv is not None:  # checked before the audio starts
            cv = CvControl(server.cv_signals, server.controls, config.cv, presets_dir,
                           learn=_learn_hook(midi)).start()
        server.start()
        if midi is not None:  # on JACK, gain/out's CCs are heard in the cycle they come (control/midi/gain_table.py)
            midi.attach_audio(server.audio)
        if config.preset == AUTOSAVE_NAME:  # an installation resumes where it was left, after a power cut too
            autosave = Autosave(PresetLibrary(presets_dir), server.controls, str(server.model_path)).start()
        report(server.describe_start())
        if config.osc is not None:
            control = ControlService.start(server, config.osc, config.discovery, morph)
            push_latent = control.osc.push_latent  # /ravelive/latent/out, while a client subscribes to it
            control.osc.feedback.on_latent_wanted = lambda wanted: server.set_latent_sink(push_latent if wanted else None)
            server.on_error = control.osc.report_error  # NaN/Inf bursts reach every subscribed client
            server.audio.on_state = lambda state, device: control.osc.announce("status/audio_state", state, device)
            report(control.describe())
            if midi is not None:
                control.osc.midi, midi.announce = midi, control.osc.announce
        if midi is not None:
            report(midi.describe())
        notify("READY=1")
        _serve_until(server, config, stop, report)
    finally:
        notify("STOPPING=1")
        if control is not None:
            server.on_error = server.audio.on_state = None
            server.set_latent_sink(None)
            control.close()
        if midi is not None:
            midi.close()
        if cv is not None:
            cv.close()
        server.stop()
        morph.close()
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


def _learn_hook(midi: MidiService | None):
    """What a `learn:PARAM` gate calls: arm MIDI learn (None without MIDI: such gates are refused at start)."""
    if midi is None:
        return None

    def learn(name: str) -> None:
        midi.learn(name, lambda error: log.warning("MIDI learn for %s: %s", name, error) if error else None)

    return learn
