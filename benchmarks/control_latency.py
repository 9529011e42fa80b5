"""Time from an OSC message, or a MIDI CC, to its effect in the output audio, through the real daemon.

Runs the daemon (`Server`) on a `jackd -d dummy` server (tests/jack_server.py;
period `--period`, serve's too) with an identity model at the bundled default
model's block (512: the default model's own output swings 60x in level from
one period to the next, which hid where a change starts), looping a noise
file as its input and recording what it plays, then moves the output gain
several times: a cut (`gain/out` to -60 dB) and a boost (+24 dB), each sent
at a random point of a period. For each message it reads JACK's frame time
just before the send (through a JACK client of its own), which places the
send on the recording's timeline to the sample, and finds, in the recording,
the first sample that differs from the unchanged output (the identity's
input at the reported latency, through the DC blocker; the noise is quiet
enough that the limiter never reduces, even boosted): the first sample of
the gain's ramp. The C callback applies the output gain as each period
plays, before its limiter (on, as serve runs by default), so that is the
control delay itself: the wait for a period that can carry the change (the
message must reach the store first), plus the limiter's lookahead of 79
samples, which delays the change as it delays the audio. Printed from the
send, and from the first sample of the period after the send (what serve
adds beyond the wait for the next period, which any host playing in periods
has).
Target: control delay at most one model block. Prints its ratio to one block.

- `--path osc`: the messages from another UDP socket.
- `--path midi`: a controller port in this process sends CC 7 (mapped to
  gain/out, -60..0 dB) and CC 8 (0..+24 dB) over real JACK MIDI on the same
  server as the audio (one clock, as on a JACK rig), and the server's
  MidiService reads them. JACK delivers MIDI once per cycle; attached to
  the audio as serve attaches it, the MidiService also hands these two
  bindings to serve's JACK client, which applies them in the cycle they
  arrive (control/midi/gain_table.py).
- `--path both`: OSC, then MIDI.

    .venv/bin/python benchmarks/control_latency.py [--repeats 20] [--path osc|midi|both] [--period 256]
"""

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravelive.control.midi.service import MidiConfig, MidiService
from ravelive.control.osc import OscConfig
from ravelive.control.osc_wire import build_message
from ravelive.control.service import ControlService
from ravelive.config import ServeConfig
from ravelive.dsp.dc_blocker import DCBlocker
from ravelive.dsp.limiter import delay_at
from ravelive.server import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jack_server import JackServer  # noqa: E402 (the tests' dummy-driver server)
from nn_fixtures import build_identity  # noqa: E402

RATE = 48000
DEFAULT_BLOCK = 512  # the bundled default model's block: the unit of the target
SETTLE_SECONDS = 0.25  # between messages: the ramp (10 ms) and any block in flight are long over
AUDIBLE = 0.002  # samples of the unchanged output this loud (of the noise's 0.02) are compared ...
DEPARTURE = 1e-3  # ... and one departs at this relative difference: a ramp's first step is 0.2% (cut) or 3% (boost)
LOOKAHEAD = delay_at(RATE)


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
def midi_path(server, directory):
    """send(db) as CC 7 (0 -> -60 dB, 127 -> 0 dB) or CC 8 (127 -> +24 dB) from a JACK MIDI port into the
    server's MidiService."""
    import rtmidi

    controller = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "benchmark")
    controller.open_virtual_port("knobs")
    map_file = Path(directory) / "map.toml"
    map_file.write_text(MIDI_MAP)
    midi = MidiService.start(server.controls, MidiConfig(inputs=("knobs",), api="jack", map_file=map_file))
    midi.attach_audio(server.audio)  # as serve does: gain/out's CCs also go straight to the callback's gain
    deadline = time.monotonic() + 10
    while "in: none" in midi.describe() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield lambda db: controller.send_message([0xB0, 8, 127] if db > 0 else [0xB0, 7, 127 if db == 0 else 0])
    finally:
        midi.close()
        controller.delete()


@contextlib.contextmanager
def jack_environment(period: int):
    """A JACK dummy server at RATE that this process's JACK clients (serve's audio, the MIDI ports) join."""
    jack = JackServer(RATE, period).start()
    saved = {name: os.environ.get(name) for name in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=jack.name, JACK_NO_START_SERVER="1")
    try:
        yield jack
    finally:
        jack.stop()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})


class JackClock:
    """JACK's frame time, read through a client of this process's own (libjack by ctypes), to place a send on
    the recording's timeline to the sample."""

    def __init__(self):
        self._lib = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
        self._lib.jack_client_open.restype = ctypes.c_void_p
        self._lib.jack_frame_time.argtypes = self._lib.jack_last_frame_time.argtypes = [ctypes.c_void_p]
        self._lib.jack_frame_time.restype = self._lib.jack_last_frame_time.restype = ctypes.c_uint32
        self._lib.jack_client_close.argtypes = [ctypes.c_void_p]
        self._client = self._lib.jack_client_open(b"benchmark-clock", 1, None)  # 1: JackNoStartServer
        if not self._client:
            raise SystemExit("cannot open a JACK client to read the frame time")

    def now(self) -> int:
        return self._lib.jack_frame_time(self._client)

    def first_frame(self, periods: Callable[[], int], period: int) -> int:
        """The frame time of the recording's first sample: the start of the cycle serve's callback has reached,
        less the periods it ran before. Read once serve's callback for the cycle has surely run (half a
        period in), so that it holds also after a cycle serve's callback missed."""
        while True:
            count, now = periods(), self.now()
            start = self._lib.jack_last_frame_time(self._client)
            if now - start >= period // 2 and periods() == count:
                return start - (count - 1) * period
            time.sleep(period / 4 / RATE)

    def close(self) -> None:
        self._lib.jack_client_close(self._client)


def unchanged_output(source: np.ndarray, length: int, latency: int) -> np.ndarray:
    """What serve plays at 0 dB: the identity's looped input through the DC blocker, `latency` late (the
    limiter, which this quiet noise never makes reduce, is a pure delay; its lookahead is in `latency`)."""
    looped = np.tile(source, length // len(source) + 1)[: length - latency]
    return np.concatenate([np.zeros(latency, dtype=np.float32), DCBlocker(1, RATE).process(looped[None])[0]])


def change_starts(played: np.ndarray, expected: np.ndarray, marks: list[int]) -> list[int | None]:
    """For each mark (the first sample of the period after a message was sent): samples to the first one that
    departs from the unchanged output (the gain ramp's first sample, within the 0.1% its first step passes
    over a few samples). None where the stretch before the mark departs already: the recording glitched
    there, or the send was misplaced, and no delay can be read."""
    settled, window = int(SETTLE_SECONDS * RATE * 0.5), int(SETTLE_SECONDS * RATE * 0.9)
    delays: list[int | None] = []
    for mark in marks:
        before, after = (departures(played[span], expected[span])
                         for span in (slice(mark - settled, mark), slice(mark, mark + window)))
        delays.append(None if before.any() else int(np.argmax(after)) if after.any() else window)
    return delays


def departures(played: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Where `played` differs from `expected` by more than DEPARTURE, among the samples loud enough to tell."""
    audible = np.abs(expected) > AUDIBLE
    return audible & (np.abs(played / np.where(audible, expected, 1) - 1) > DEPARTURE)


def measure(path: str, repeats: int, margin_ms: float, period: int) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory, jack_environment(period):
        source, recorded = Path(directory) / "noise.wav", Path(directory) / "out.wav"
        noise = np.random.default_rng(0).uniform(-0.02, 0.02, RATE).astype(np.float32)  # +24 dB stays below the limiter
        soundfile.write(source, noise, RATE, subtype="FLOAT")  # the input exactly as predicted
        config = ServeConfig(model=build_identity(Path(directory)), block=DEFAULT_BLOCK, period=period,
                             input_device="system", output_device="system", input_file=source, output_file=recorded,
                             latency_margin_ms=margin_ms)
        server = Server(config)
        server.start()
        latency, block = server.latency, server.status()["block"]
        clock = JackClock()  # where in its period each message was sent
        periods = lambda: server.realtime.counters.periods  # noqa: E731
        sends = {kind: [] for kind in CHANGES}  # the sample being played at each send, by JACK's frame time
        stored = {kind: [] for kind in CHANGES}
        rng = np.random.default_rng(1)
        with osc_path(server) if path == "osc" else midi_path(server, directory) as send:
            time.sleep(0.5)
            first = clock.first_frame(periods, period)
            for _ in range(repeats):
                for kind, db in CHANGES.items():
                    send(0.0)
                    time.sleep(SETTLE_SECONDS + rng.uniform(0, period / RATE))  # sent anywhere in a period
                    sent = clock.now()
                    started = time.perf_counter()
                    send(db)
                    while server.controls.get("gain/out") != db and time.perf_counter() - started < 1.0:
                        time.sleep(0.0001)  # poll: the store holds the value as soon as the control thread has it
                    stored[kind].append(time.perf_counter() - started)
                    time.sleep(SETTLE_SECONDS)
                    # The recording has no samples for a cycle serve's callback missed: the frame time of its first
                    # sample moves on by a period. Only with the same one on both sides is the send placed right.
                    first, before = clock.first_frame(periods, period), first
                    sends[kind].append(sent - first if first == before else None)  # None: left out
        clock.close()
        server.stop()
        late = server.status()["late_blocks"]
        played, _ = soundfile.read(recorded, dtype="float32")
    expected = unchanged_output(noise, len(played), latency)
    missed = sum(at is None for ats in sends.values() for at in ats)
    surface = "OSC message" if path == "osc" else "MIDI CC over JACK MIDI"
    print(f"\n== {path}: identity model, block {block} samples ({1000 * block / RATE:.1f} ms), period {period}, "
          f"audio latency {latency} samples ({1000 * latency / RATE:.1f} ms, the limiter's {LOOKAHEAD}-sample "
          f"lookahead in it), {repeats} messages of each kind, {late} late blocks; {missed} messages left out: "
          f"serve's callback missed a JACK cycle around them")
    for kind, db in CHANGES.items():
        placed = [(-(-at // period) * period, at) for at in sends[kind] if at is not None]  # (next period, send)
        found = change_starts(played, expected, [mark for mark, _ in placed])
        delays = [delay for delay in found if delay is not None]
        spans = [mark + delay - at for (mark, at), delay in zip(placed, found) if delay is not None]
        label = f"[{path} {kind} to {db:+g} dB]"
        print(f"{label} from the next period, samples: {sorted(delays)} ({len(found) - len(delays)} left out: the "
              f"output departed from the unchanged one before the send)")
        print(f"{label} {surface} -> audible change, from the next period: median {np.median(delays):.0f} samples "
              f"({1000 * np.median(delays) / RATE:.1f} ms), max {max(delays)} ({1000 * max(delays) / RATE:.1f} ms)")
        print(f"{label} {surface} -> audible change, from the send: median {np.median(spans):.0f} samples, "
              f"min {min(spans)}, max {max(spans)} ({1000 * max(spans) / RATE:.1f} ms)")
        print(f"{label} {surface} -> value in the store: median {1e3 * np.median(stored[kind]):.2f} ms, "
              f"max {1e3 * max(stored[kind]):.2f} ms")
        print(f"{label} ratio of the max control delay from the send to one model block: {max(spans) / block:.2f} "
              f"(target <= 1.00)")
    print(f"(the {LOOKAHEAD} samples of the limiter's lookahead are the least a delay can be; counted from the send "
          f"rather than from the next period, a delay also holds where in its period the message was sent: "
          f"any host that plays in periods waits for the next one)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--margin-ms", type=float, default=40.0, help="serve's --latency-margin")
    parser.add_argument("--path", choices=["osc", "midi", "both"], default="osc", help="which control surface")
    parser.add_argument("--period", type=int, default=256, help="serve's period, and the JACK server's")
    arguments = parser.parse_args()
    for path in ("osc", "midi") if arguments.path == "both" else (arguments.path,):
        measure(path, arguments.repeats, arguments.margin_ms, arguments.period)
