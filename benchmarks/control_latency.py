"""Time from an OSC message, or a MIDI CC, to its effect in the output audio, through the real daemon.

Runs `ravelive serve` in file mode (no sound card; the clock paces the audio)
with an identity model at the bundled default model's block (512: the
default model's own output swings 60x in level from one period to the next,
which hid where a boost starts) and OSC on a free port, then moves the output
gain several times: a cut (`/ravelive/gain/out -60`, from another UDP socket)
and a boost (+24 dB). For each message it records the playback position when
the message was sent and finds, in the recorded output, the sample where the
gain ramp starts. The C callback applies the output gain as each period
plays, before its limiter, so that is the control delay itself: the time for
the message to reach the store, and for the next period to carry it (plus,
with the limiter, its 79-sample lookahead: the boost is measured with it on,
as serve runs by default; the cut with it off, since the DC blocker's tail
would hide the first exact zero after a mute), measured to the resolution of
one audio period.
Target: control delay at most one model block. Prints it, and its ratio to
one model block.

`--path midi` does the same with MIDI: a `jackd -d dummy` server
(tests/jack_server.py), a controller port in this process sending CC 7
(mapped to gain/out, -60..0 dB) over real JACK MIDI, and the server's
MidiService reading it; `--path both` runs OSC then MIDI.

    .venv/bin/python benchmarks/control_latency.py [--repeats 20] [--path osc|midi|both]
"""

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravelive.control.midi.service import MidiConfig, MidiService
from ravelive.control.osc import OscConfig
from ravelive.control.osc_wire import build_message
from ravelive.control.service import ControlService
from ravelive.config import ServeConfig
from ravelive.engine.output import RAMP_SECONDS
from ravelive.server import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jack_server import JackServer  # noqa: E402 (the tests' dummy-driver server)
from nn_fixtures import build_identity  # noqa: E402

RATE = 48000
DEFAULT_BLOCK = 512  # the bundled default model's block: the unit of the target
SETTLE_SECONDS = 0.25  # between messages: the ramp (10 ms) and any block in flight are long over


MIDI_MAP = """
[[map]]
target = "gain/out"
cc = 7
min = -60
max = 0

[[map]]
target = "gain/out"
cc = 8
min = 0
max = 24
"""
CHANGES = {"cut": -60.0, "boost": 24.0}  # from 0 dB: a mute, a boost (both applied by the C callback per period)


@contextlib.contextmanager
def osc_path(server):
    """send(db) over OSC from another UDP socket."""
    control = ControlService.start(server, OscConfig(port=0), discovery=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        yield lambda db: sender.sendto(build_message("/ravelive/gain/out", [db]), control.osc.address)
    control.close()


@contextlib.contextmanager
def midi_path(server, directory, jack_period):
    """send(db) as CC 7 (0 -> -60 dB, 127 -> 0 dB) from a JACK MIDI port into the server's MidiService."""
    import rtmidi

    jack = JackServer(period=jack_period).start()  # JACK MIDI is delivered once per JACK cycle
    os.environ.update(JACK_DEFAULT_SERVER=jack.name, JACK_NO_START_SERVER="1")
    controller = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "benchmark")
    controller.open_virtual_port("knobs")
    map_file = Path(directory) / "map.toml"
    map_file.write_text(MIDI_MAP)
    midi = MidiService.start(server.controls, MidiConfig(inputs=("knobs",), api="jack", map_file=map_file))
    deadline = time.monotonic() + 10
    while "in: none" in midi.describe() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield lambda db: controller.send_message([0xB0, 8, 127] if db > 0 else [0xB0, 7, 127 if db == 0 else 0])
    finally:
        midi.close()
        controller.delete()
        jack.stop()


def measure(path: str, kind: str, repeats: int, margin_ms: float, jack_period: int) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        source, recorded = Path(directory) / "noise.wav", Path(directory) / "out.wav"
        noise = np.random.default_rng(0).uniform(-0.05, 0.05, RATE).astype(np.float32)  # room for a 24 dB boost
        soundfile.write(source, noise, RATE)
        model = build_identity(Path(directory))
        config = ServeConfig(model=model, block=DEFAULT_BLOCK, input_device="none", output_device="none",
                             input_file=source, output_file=recorded,
                             latency_margin_ms=margin_ms, realtime=False,
                             limiter=kind == "boost")  # see the module docstring
        server = Server(config)
        server.start()
        period, latency, block = config.period, server.latency, server.status()["block"]
        sent_at, stored = [], []
        surface = osc_path(server) if path == "osc" else midi_path(server, directory, jack_period)
        with surface as send:
            time.sleep(0.5)
            for _ in range(repeats):
                send(0.0)
                time.sleep(SETTLE_SECONDS)
                sent_at.append(server.realtime.counters.periods * period)  # the next sample to be played
                started = time.perf_counter()
                send(CHANGES[kind])
                while server.controls.get("gain/out") != CHANGES[kind] and time.perf_counter() - started < 1.0:
                    time.sleep(0.0001)  # poll: the store holds the value as soon as the control thread handled it
                stored.append(time.perf_counter() - started)
                time.sleep(SETTLE_SECONDS)
        server.stop()
        played, _ = soundfile.read(recorded, dtype="float32")
    ramp = int(RAMP_SECONDS * RATE)
    totals = []
    for position in sent_at:
        segment = played[position : position + int(SETTLE_SECONDS * RATE * 0.9)]
        if kind == "cut":
            nonzero = np.flatnonzero(segment)
            silent_from = nonzero[-1] + 1 if len(nonzero) else 0  # the ramp's last sample is the first exact zero
            totals.append(silent_from - ramp)
        else:  # the first sample above 3x the loudest of the settled quarter second before: early in the ramp
            before = np.abs(played[position - int(SETTLE_SECONDS * RATE * 0.5) : position]).max()
            totals.append(int(np.argmax(np.abs(segment) > 3 * before)))
    delays = np.array(totals)
    path = f"{path} {kind} to {CHANGES[kind]:+g} dB"
    print(f"[{path}] control delays, samples: {sorted(delays.tolist())}")
    label = "OSC message" if path.startswith("osc") else f"MIDI CC (JACK, period {jack_period})"
    print(f"[{path}] identity model, block {block} samples ({1000 * block / RATE:.1f} ms), period {period}, "
          f"audio latency {latency} samples ({1000 * latency / RATE:.1f} ms), limiter "
          f"{'on' if config.limiter else 'off'}, {repeats} messages")
    print(f"[{path}] {label} -> audible change: median {np.median(delays):.0f} samples "
          f"({1000 * np.median(delays) / RATE:.1f} ms), max {delays.max()} ({1000 * delays.max() / RATE:.1f} ms)")
    print(f"[{path}] {label} -> value in the store: median {1e3 * np.median(stored):.2f} ms, "
          f"max {1e3 * max(stored):.2f} ms")
    print(f"[{path}] (the audio is measured in whole periods of {period} samples: 0 means the change was heard in "
          f"the first period that could carry it)")
    print(f"[{path}] ratio of the max control delay to one model block: {delays.max() / block:.2f} (target <= 1.00)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--margin-ms", type=float, default=40.0, help="serve's --latency-margin")
    parser.add_argument("--path", choices=["osc", "midi", "both"], default="osc", help="which control surface")
    parser.add_argument("--jack-period", type=int, default=256, help="JACK's period for the MIDI path (frames)")
    parser.add_argument("--change", choices=[*CHANGES, "both"], default="both",
                        help="a cut (gain/out to -60 dB) or a boost (+24 dB), both per period in C")
    arguments = parser.parse_args()
    for path in ("osc", "midi") if arguments.path == "both" else (arguments.path,):
        for kind in CHANGES if arguments.change == "both" else (arguments.change,):
            measure(path, kind, arguments.repeats, arguments.margin_ms, arguments.jack_period)
