"""gain/out's CCs applied by our own JACK client in the cycle they arrive (rtjack.c, control/midi/gain_table.py).

On a `jackd -d dummy` server, with real JACK MIDI ports: the table the control thread compiles (unit tests),
the C lookup with no control thread at all (the gain moves while the store does not), and `ravelive serve`
with a mapping file, where every CC of an immediate binding goes both ways and a pickup binding only through
the control thread. How much sooner it is heard is benchmarks/control_latency.py's (--path midi).
"""

import json
import subprocess
import sys
import time

import pytest

from osc_helpers import Client, PrintedLines, free_udp_port
from ravelive.control.midi.binding import Binding
from ravelive.control.midi.gain_table import gain_cells
from ravelive.control.midi.mapping import load_map
from ravelive.control.model_params import OUTPUT_GAIN
from ravelive.control.params import ParameterSpec, ParameterType
from ravelive.dsp.smoothing import db_to_gain

SPECS = {OUTPUT_GAIN: ParameterSpec(OUTPUT_GAIN, ParameterType.FLOAT, 0.0, "output gain", -120.0, 24.0),
         "mix": ParameterSpec("mix", ParameterType.FLOAT, 1.0, "dry/wet", 0.0, 1.0)}


def cells_of(tmp_path, text):
    path = tmp_path / "map.toml"
    path.write_text(text)
    midi_map = load_map(path, SPECS)
    return gain_cells([Binding(m, SPECS[m.target]) for m in midi_map.mappings], midi_map)


def test_an_absolute_cc_gives_the_bindings_own_gain_at_every_value(tmp_path):
    cells = cells_of(tmp_path, '[[map]]\ntarget = "gain/out"\ncc = 7\nchannel = 2\nmin = -60\nmax = 0\n'
                               '[[map]]\ntarget = "mix"\ncc = 8\n')
    assert list(cells) == [(1, 7)]  # channel 2, and nothing for the other target
    assert cells[(1, 7)] == pytest.approx([db_to_gain(-60 + 60 * value / 127) for value in range(128)])


def test_any_channel_fills_all_sixteen_and_the_last_binding_of_a_control_wins(tmp_path):
    cells = cells_of(tmp_path, '[[map]]\ntarget = "gain/out"\ncc = 7\nmin = -60\nmax = 0\n'
                               '[[map]]\ntarget = "gain/out"\ncc = 7\nchannel = 3\nmin = 0\nmax = 6\ninvert = true\n')
    assert sorted(cells) == [(channel, 7) for channel in range(16)]
    assert cells[(2, 7)][0] == pytest.approx(db_to_gain(6.0)) and cells[(0, 7)][0] == pytest.approx(db_to_gain(-60))


def test_controls_whose_value_needs_more_than_the_cc_stay_with_the_control_thread(tmp_path):
    cells = cells_of(tmp_path, '[[map]]\ntarget = "gain/out"\ncc = 20\nmode = "relative 1"\n'
                               '[[map]]\ntarget = "gain/out"\ncc = 21\ntakeover = "pickup"\n'
                               '[[map]]\ntarget = "gain/out"\ncc = 22\n'  # a pickup binding reads it too:
                               '[[map]]\ntarget = "gain/out"\ncc = 22\nchannel = 5\ntakeover = "pickup"\n'
                               '[[map]]\ntarget = "mix"\ncc14 = 1\n'  # CC 1 and 33 make a 14-bit pair
                               '[[map]]\ntarget = "gain/out"\ncc = 33\n'
                               '[[map]]\ntarget = "mix"\nnrpn = 300\n'  # then CC 6 is data entry
                               '[[map]]\ntarget = "gain/out"\ncc = 6\n')
    assert sorted(cells) == [(channel, 22) for channel in range(16) if channel != 4]


CYCLE_SCRIPT = """
import json, sys, time
from pathlib import Path
import rtmidi
from ravelive.config import ServeConfig
from ravelive.server import Server

server = Server(ServeConfig(model=Path(sys.argv[1]), block=256, input_device="system", output_device="system",
                            input_file=Path(sys.argv[2]), latency_margin_ms=20))
server.start()
native, audio = server.realtime.native, server.audio
def plug():
    controller = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-fader")
    controller.open_virtual_port("fader")
    return controller

controller = plug()
source = "test-fader:fader"

def applied(count):
    deadline = time.monotonic() + 10
    while native.counter("midi_gain_events") < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return native.counter("midi_gain_events"), native.load("gain")

audio.use_midi_gain({(0, 7): tuple(value / 127 for value in range(128))})
audio.connect_midi([source])
results = {}
controller.send_message([0xB0, 7, 64])
results["cc"] = applied(1)
results["store"] = server.controls.get("gain/out")
for message in ([0xB1, 7, 0], [0xB0, 8, 0], [0x90, 7, 0], [0xE0, 0, 0], [0xB0, 7]):
    controller.send_message(message)
controller.send_message([0xB0, 7, 127])
results["others"] = applied(2)
time.sleep(0.1)
results["settled"] = applied(2)
controller.delete()  # the controller unplugged: the control thread no longer lists it ...
audio.connect_midi([])
controller = plug()  # ... and plugged back: connected again at the next poll
audio.connect_midi([source])
controller.send_message([0xB0, 7, 0])
results["replugged"] = applied(3)
server.stop()
print(json.dumps(results))
"""


def test_the_jack_client_applies_a_bound_cc_itself_and_nothing_else(jack_midi, identity_model_path, noise_file):
    result = subprocess.run([sys.executable, "-c", CYCLE_SCRIPT, str(identity_model_path), str(noise_file)],
                            env=jack_midi.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(result.stdout.splitlines()[-1])
    one = 1 << 30
    assert results["cc"] == [1, round(64 / 127 * one)]
    assert results["store"] == 0.0  # no control thread: the C lookup alone moved the gain
    # another channel, another CC, a note, a pitch bend and a truncated CC are not looked up, nor counted
    assert results["others"] == results["settled"] == [2, one]
    assert results["replugged"] == [3, 0]


MAP = """\
[[map]]  # immediate: the JACK client applies it in the cycle it comes, the control thread writes the store
target = "gain/out"
cc = 7
min = -60
max = 0

[[map]]  # pickup: the control thread only
target = "gain/out"
cc = 9
min = -60
max = 0
takeover = "pickup"
"""


def test_serve_applies_immediate_gain_ccs_in_the_cycle_and_the_store_agrees(jack_midi, identity_model_path,
                                                                            noise_file, tmp_path):
    from midi_helpers import Sender, status, wait_for

    map_file = tmp_path / "map.toml"
    map_file.write_text(MAP)
    port = free_udp_port()
    sender = Sender("fader-box", client="test-box")
    process = subprocess.Popen(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(identity_model_path), "--device", "system",
         "--input", str(noise_file), "--block", "256", "--latency-margin", "20", "--no-realtime", "--no-discovery",
         "--osc-port", str(port), "--duration", "60", "--midi-api", "jack", "--midi-in", "fader-box",
         "--midi-out", "midi_in", "--midi-map", str(map_file)],
        env=jack_midi.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = PrintedLines(process.stdout, "ravelive serve")
    client = Client(("127.0.0.1", port))
    try:
        lines.wait_for("MIDI in: test-box:fader-box", time.monotonic() + 90)  # the audio runs, MIDI attached to it
        for value in (0, 64, 127, 100):
            sender.send([0xB0, 7, value], pause=0.05)
        assert wait_for(client, "gain/out", -60 + 60 * 100 / 127) == pytest.approx(-60 + 60 * 100 / 127, abs=1e-4)
        assert status(client)["midi/gain_in_cycle"] == 4
        sender.send([0xB0, 9, 100], pause=0.05)  # at the current value: picked up, by the control thread alone
        sender.send([0xB0, 9, 0])
        assert wait_for(client, "gain/out", -60.0) == -60.0
        items = status(client)
        assert items["midi/gain_in_cycle"] == 4 and items["midi/writes"] == 6
        assert items["midi/ports"] == "in: test-box:fader-box; out: none"  # --midi-out midi_in: not our own port
    finally:
        client.close()
        sender.close()
        process.terminate()
        process.wait(30)
