"""Time from an OSC message to its effect in the output audio, through the real daemon.

Runs `ravelive serve` in file mode (no sound card; the clock paces the audio)
with the bundled default model and OSC on a free port, then mutes the output
with `/ravelive/gain/out -60` (from another UDP socket) several times. For
each message it records the playback position when the message was sent and
finds, in the recorded output, the sample where the gain ramp starts. The
total delay includes the audio path's own latency (input to output); the
control delay is the rest: the time for the message to reach the store and
the worker to pick up the next snapshot. The output gain acts on the
worker's output, which plays `latency - engine latency` samples after its
input was captured (the margin plus the schedule's alignment; the engine's own
delay is inside that output), so the control delay is the total minus that
shift, measured to the resolution of one audio period.
Target: control delay at most one model block. Prints both, and their ratio
to one model block.

    .venv/bin/python benchmarks/control_latency.py [--repeats 20]
"""

import argparse
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravelive.control.osc import OscConfig
from ravelive.control.osc_wire import build_message
from ravelive.control.service import ControlService
from ravelive.config import ServeConfig
from ravelive.engine.output import RAMP_SECONDS
from ravelive.server import Server

RATE = 48000
SETTLE_SECONDS = 0.25  # between messages: the ramp (10 ms) and any block in flight are long over


def measure(repeats: int, margin_ms: float) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        source, recorded = Path(directory) / "noise.wav", Path(directory) / "out.wav"
        noise = np.random.default_rng(0).uniform(-0.5, 0.5, RATE).astype(np.float32)
        soundfile.write(source, noise, RATE)
        config = ServeConfig(input_device="none", output_device="none", input_file=source, output_file=recorded,
                             latency_margin_ms=margin_ms, realtime=False,
                             limiter=False)  # the DC blocker's tail would hide the first exact zero after a mute
        server = Server(config)
        server.start()
        control = ControlService.start(server, OscConfig(port=0), discovery=False)
        period, latency, block = config.period, server.latency, server.status()["block"]
        margin = latency - server.realtime.processor.latency  # where the worker's output plays: see the docstring
        sent_at, stored = [], []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            time.sleep(0.5)
            for _ in range(repeats):
                sender.sendto(build_message("/ravelive/gain/out", [0.0]), control.osc.address)
                time.sleep(SETTLE_SECONDS)
                sent_at.append(server.realtime.counters.periods * period)  # the next sample to be played
                started = time.perf_counter()
                sender.sendto(build_message("/ravelive/gain/out", [-60.0]), control.osc.address)
                while server.controls.get("gain/out") != -60.0 and time.perf_counter() - started < 1.0:
                    time.sleep(0.0001)  # poll: the store holds the value as soon as the OSC thread handled it
                stored.append(time.perf_counter() - started)
                time.sleep(SETTLE_SECONDS)
        control.close()
        server.stop()
        played, _ = soundfile.read(recorded, dtype="float32")
    ramp = int(RAMP_SECONDS * RATE)
    totals = []
    for position in sent_at:
        segment = played[position : position + int(SETTLE_SECONDS * RATE * 0.9)]
        nonzero = np.flatnonzero(segment)
        silent_from = nonzero[-1] + 1 if len(nonzero) else 0  # the ramp's last sample is the first exact zero
        totals.append(silent_from - ramp)
    totals = np.array(totals)
    controls = totals - margin
    print(f"default model, block {block} samples ({1000 * block / RATE:.1f} ms), period {period}, "
          f"audio latency {latency} samples ({1000 * latency / RATE:.1f} ms) of which output shift {margin}, "
          f"{repeats} messages")
    print(f"message -> audible change (total): median {np.median(totals):.0f} samples "
          f"({1000 * np.median(totals) / RATE:.1f} ms), max {totals.max()} ({1000 * totals.max() / RATE:.1f} ms)")
    print(f"control delay (total - shift): median {np.median(controls):.0f} samples "
          f"({1000 * np.median(controls) / RATE:.1f} ms), max {controls.max()} ({1000 * controls.max() / RATE:.1f} ms)")
    print(f"OSC message -> value in the store: median {1e3 * np.median(stored):.2f} ms, max {1e3 * max(stored):.2f} ms")
    print(f"(the audio is measured in whole periods of {period} samples: 0 means the change was heard in the first "
          f"period that could carry it)")
    print(f"ratio of the max control delay to one model block: {controls.max() / block:.2f} (target <= 1.00)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--margin-ms", type=float, default=40.0, help="serve's --latency-margin")
    arguments = parser.parse_args()
    measure(arguments.repeats, arguments.margin_ms)
