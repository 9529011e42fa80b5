"""MIDI into the real daemon over real JACK MIDI ports: every source as mapped, learn, pickup, feedback, replug.

One server (the codec fixture model, file mode, no sound card) per module with OSC and MIDI; values are
read back over OSC. Tests that need another map write the file and send /ravelive/midi/reload.
"""

import time
import tomllib

import numpy as np
import pytest
import soundfile

from midi_helpers import Receiver, Sender, query, wait_for
from osc_helpers import Client
from ravelive.control.midi.service import MidiConfig, MidiService
from ravelive.control.osc import OscConfig
from ravelive.control.service import ControlService
from ravelive.config import ServeConfig
from ravelive.server import Server

MAP = """\
# the test rig: one control per source kind
[[map]]
target = "latent/0/bias"
cc = 1
min = -2
max = 2

[[map]]  # a fader box that sends MSB first
target = "mix"
cc14 = 2

[[map]]  # and one that sends LSB first
target = "latent/3/scale"
cc14 = 3

[[map]]
target = "latent/1/bias"
nrpn = 300
channel = 2

[[map]]
target = "latent/2/bias"
cc = 20
mode = "2's comp."
step = 0.1

[[map]]
target = "latent/3/bias"
cc = 21
mode = "bin offset"
step = 0.1

[[map]]
target = "latent/0/scale"
cc = 22
mode = "relative 3"
step = 0.125

[[map]]
target = "latent/0/freeze"
note = 36
toggle = true

[[map]]
target = "bypass"
note = 37

[[map]]
target = "gain/out"
pitchbend = true
min = -60
max = 0

[[map]]
target = "latent/1/scale"
pressure = true
min = 0
max = 2

[[map]]
target = "latent/2/noise"
cc = 23
min = 0
max = 1
takeover = "pickup"

[program]
"""


class Rig:
    def __init__(self, model_path, directory):
        self.map_file = directory / "map.toml"
        self.map_file.write_text(MAP)
        noise = directory / "noise.wav"
        soundfile.write(noise, np.random.default_rng(0).uniform(-0.5, 0.5, 24000).astype(np.float32), 48000)
        self.sender, self.leds = Sender("knobs"), Receiver("leds")
        self.recalled = []
        self.server = Server(ServeConfig(model=model_path, input_device="none", output_device="none",
                                         input_file=noise, realtime=False, latency_margin_ms=100))
        config = MidiConfig(inputs=("KNOBS",), outputs=("leds",), api="jack", map_file=self.map_file)
        self.reports = []
        self.midi = MidiService.start(self.server.controls, config, recall=self.recalled.append,
                                      report=self.reports.append)
        self.server.midi_status = self.midi.status
        self.server.start()
        self.control = ControlService.start(self.server, OscConfig(port=0), discovery=False)
        self.control.osc.midi, self.midi.announce = self.midi, self.control.osc.announce
        self.client = Client(self.control.osc.address)

    def close(self):
        self.client.close()
        self.control.close()
        self.midi.close()
        self.server.stop()
        self.sender.close()
        self.leds.close()

    def connected(self):
        deadline = time.monotonic() + 10
        while "in: none" in self.midi.describe() or "out: none" in self.midi.describe():
            assert time.monotonic() < deadline, self.reports
            time.sleep(0.05)


@pytest.fixture(scope="module")
def rig(jack_midi, codec_model_path, tmp_path_factory):
    rig = Rig(codec_model_path, tmp_path_factory.mktemp("midi"))
    rig.connected()
    yield rig
    rig.close()


def fraction(raw, bits=7):
    return raw / (16383 if bits == 14 else 127)


def test_7_bit_cc_with_running_status(rig):
    rig.sender.send([0xB0, 1, 127])
    assert wait_for(rig.client, "latent/0/bias", 2.0) == pytest.approx(2.0)
    rig.sender.send([1, 0])  # running status: the next CC 1 value, no status byte
    assert wait_for(rig.client, "latent/0/bias", -2.0) == pytest.approx(-2.0)
    rig.sender.send([0xB0, 1, 64])
    assert wait_for(rig.client, "latent/0/bias", -2 + 4 * fraction(64)) == pytest.approx(-2 + 4 * fraction(64))


def test_14_bit_cc_in_both_byte_orders(rig):
    rig.sender.send([0xB0, 2, 64], [0xB0, 34, 5])  # MSB first
    expected = fraction(64 << 7 | 5, 14)
    assert wait_for(rig.client, "mix", expected) == pytest.approx(expected, abs=1e-6)
    rig.sender.send([0xB0, 34, 9])  # only the LSB changed
    expected = fraction(64 << 7 | 9, 14)
    assert wait_for(rig.client, "mix", expected) == pytest.approx(expected, abs=1e-6)
    rig.sender.send([0xB0, 35, 100], [0xB0, 3, 20])  # LSB first
    expected = -4 + 8 * fraction(20 << 7 | 100, 14)
    assert wait_for(rig.client, "latent/3/scale", expected) == pytest.approx(expected, abs=1e-5)


def test_nrpn_data_and_increment(rig):
    rig.sender.send([0xB1, 99, 2], [0xB1, 98, 44], [0xB1, 38, 3], [0xB1, 6, 100])
    expected = -5 + 10 * fraction(100 << 7 | 3, 14)
    assert wait_for(rig.client, "latent/1/bias", expected) == pytest.approx(expected, abs=1e-5)
    rig.sender.send([0xB1, 96, 0])
    expected += 10 / 128
    assert wait_for(rig.client, "latent/1/bias", expected) == pytest.approx(expected, abs=1e-5)
    rig.sender.send([0xB0, 99, 2], [0xB0, 98, 44], [0xB0, 6, 0])  # channel 1: not this mapping
    time.sleep(0.2)
    assert query(rig.client, "latent/1/bias") == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("target, number, up, down, start, tick", [
    ("latent/2/bias", 20, 3, 127, 0.0, 1.0),  # two's complement: 3 up, 127 = 1 down
    ("latent/3/bias", 21, 67, 63, 0.0, 1.0),  # offset 64
    ("latent/0/scale", 22, 3, 65, 1.0, 1.0),  # sign bit
])
def test_relative_encoders(rig, target, number, up, down, start, tick):
    assert query(rig.client, target) == pytest.approx(start)
    rig.sender.send([0xB0, number, up])
    assert wait_for(rig.client, target, start + 3 * tick) == pytest.approx(start + 3 * tick)
    rig.sender.send([0xB0, number, down])
    assert wait_for(rig.client, target, start + 2 * tick) == pytest.approx(start + 2 * tick)


def test_notes_toggle_and_momentary(rig):
    rig.sender.send([0x90, 36, 100], [0x80, 36, 0])
    assert wait_for(rig.client, "latent/0/freeze", True) == 1
    rig.sender.send([0x90, 36, 100], [0x90, 36, 0])
    assert wait_for(rig.client, "latent/0/freeze", False) == 0
    rig.sender.send([0x90, 37, 1])
    assert wait_for(rig.client, "bypass", True) == 1
    rig.sender.send([0x80, 37, 0])
    assert wait_for(rig.client, "bypass", False) == 0


def test_pitch_bend_pressure_and_program_change(rig):
    rig.sender.send([0xE0, 0, 64])
    expected = -60 + 60 * fraction(8192, 14)
    assert wait_for(rig.client, "gain/out", expected) == pytest.approx(expected, abs=1e-4)
    rig.sender.send([0xD3, 127])
    assert wait_for(rig.client, "latent/1/scale", 2.0) == pytest.approx(2.0)
    rig.sender.send([0xC4, 5])
    deadline = time.monotonic() + 5
    while not rig.recalled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rig.recalled == [5]
    rig.sender.send([0xE0, 127, 127])
    assert wait_for(rig.client, "gain/out", 0.0) == pytest.approx(0.0)


def test_pickup_does_not_jump(rig):
    rig.client.send("/ravelive/latent/2/noise", 0.5)
    assert wait_for(rig.client, "latent/2/noise", 0.5) == pytest.approx(0.5)
    time.sleep(0.1)  # longer than the 50 ms that would let a fast move through
    rig.sender.send([0xB0, 23, 0], [0xB0, 23, 10], [0xB0, 23, 20], pause=0.06)
    time.sleep(0.2)
    assert query(rig.client, "latent/2/noise") == pytest.approx(0.5)
    rig.sender.send([0xB0, 23, 62])  # within 3/128 of 0.5: picked up
    assert wait_for(rig.client, "latent/2/noise", fraction(62)) == pytest.approx(fraction(62))
    rig.sender.send([0xB0, 23, 100])  # from now on it follows
    assert wait_for(rig.client, "latent/2/noise", fraction(100)) == pytest.approx(fraction(100))


def test_feedback_in_each_mappings_encoding_and_no_echo(rig):
    rig.leds.drain(0.3)
    rig.client.send("/ravelive/mix", 1.0)
    assert rig.leds.collect(2) == [[0xB0, 2, 127], [0xB0, 34, 127]]
    rig.client.send("/ravelive/latent/1/bias", 5.0)
    assert rig.leds.collect(4) == [[0xB1, 99, 2], [0xB1, 98, 44], [0xB1, 6, 127], [0xB1, 38, 127]]
    rig.client.send("/ravelive/latent/0/bias", 0.0)  # cc 1 over -2..2: the middle
    assert rig.leds.collect(1) == [[0xB0, 1, 64]]
    rig.client.send("/ravelive/bypass", 1)
    assert rig.leds.collect(1) == [[0x90, 37, 127]]
    rig.client.send("/ravelive/gain/out", -60.0)
    assert rig.leds.collect(1) == [[0xE0, 0, 0]]
    rig.leds.drain(0.2)
    rig.sender.send([0xB0, 1, 100])  # the knob that moves it hears nothing back
    assert wait_for(rig.client, "latent/0/bias", -2 + 4 * fraction(100)) == pytest.approx(-2 + 4 * fraction(100))
    assert rig.leds.drain(0.3) == []
    rig.sender.send([0xB0, 20, 1])  # a relative encoder does: its LED ring only knows what it is told
    assert rig.leds.collect(1)[0][:2] == [0xB0, 20]


def test_learn_binds_writes_the_file_and_announces(rig):
    watcher = Client(rig.control.osc.address)
    watcher.send("/ravelive/notify", 1)
    watcher.expect("/ravelive/notify")
    rig.client.send("/ravelive/midi/learn", "latent/3/noise")
    time.sleep(0.1)
    rig.sender.send([0xB5, 99, 1], [0xB5, 98, 2], [0xB5, 6, 64], [0xB5, 38, 0])
    assert rig.client.expect("/ravelive/done") == ["/ravelive/midi/learn", "latent/3/noise"]
    assert watcher.expect("/ravelive/midi/learned") == ["latent/3/noise", "nrpn 130 on channel 6"]
    learned = [t for t in tomllib.loads(rig.map_file.read_text())["map"] if t["target"] == "latent/3/noise"]
    assert learned == [{"target": "latent/3/noise", "nrpn": 130, "channel": 6}]
    assert "# the test rig" in rig.map_file.read_text() and "# and one that sends LSB first" in rig.map_file.read_text()
    rig.sender.send([0xB5, 99, 1], [0xB5, 98, 2], [0xB5, 6, 127], [0xB5, 38, 127])
    assert wait_for(rig.client, "latent/3/noise", 4.0) == pytest.approx(4.0)
    rig.client.send("/ravelive/midi/map")
    entries = []
    while (message := rig.client.receive()) and message[0][0] == "/ravelive/midi/map/entry":
        entries.append(tuple(message[0][1]))
    assert ("latent/3/noise", "nrpn 130 on channel 6") in entries
    assert message[0] == ("/ravelive/midi/map/end", [len(entries)])

    rig.client.send("/ravelive/midi/learn", "latent/3/replace_value")  # a 14-bit pair, learned and driven
    time.sleep(0.1)
    rig.sender.send([0xB0, 9, 127], [0xB0, 41, 127], [0xB0, 9, 127], [0xB0, 41, 126])
    assert rig.client.expect("/ravelive/done") == ["/ravelive/midi/learn", "latent/3/replace_value"]
    rig.sender.send([0xB0, 9, 0], [0xB0, 41, 0])
    assert wait_for(rig.client, "latent/3/replace_value", -5.0) == pytest.approx(-5.0)

    rig.client.send("/ravelive/midi/forget", "latent/3/noise")
    assert rig.client.expect("/ravelive/done") == ["/ravelive/midi/forget", "latent/3/noise"]
    assert watcher.expect("/ravelive/midi/forgot") == ["latent/3/noise", 1]
    assert "latent/3/noise" not in rig.map_file.read_text()
    watcher.close()


def test_a_bad_file_on_reload_keeps_the_old_map(rig):
    before = rig.midi.bindings()
    good = rig.map_file.read_text()
    rig.map_file.write_text(good + '\n[[map]]\ntarget = "latent/7/bias"\ncc = 1\n')
    rig.client.send("/ravelive/midi/reload")
    address, message = rig.client.expect("/ravelive/error")
    assert address == "/ravelive/midi/reload" and "map.toml:" in message and "latent/7/bias" in message
    assert rig.midi.bindings() == before
    rig.map_file.write_text(good)


def test_bindings_follow_a_model_swap(rig, identity_model_path, codec_model_path):
    rig.server.swap_model(identity_model_path)  # no latents: the latent bindings wait, mix still plays
    rig.sender.send([0xB0, 2, 0], [0xB0, 34, 0], [0xB0, 1, 0])
    assert wait_for(rig.client, "mix", 0.0) == 0.0
    assert rig.midi.status()["midi"]["bindings"] < len(rig.midi.bindings())
    rig.server.swap_model(codec_model_path)
    rig.sender.send([0xB0, 1, 127])
    assert wait_for(rig.client, "latent/0/bias", 2.0) == pytest.approx(2.0)
    assert rig.midi.status()["midi"]["bindings"] == len(rig.midi.bindings())


def test_the_controller_unplugged_and_plugged_back_is_reconnected(rig):
    rig.sender.close()
    deadline = time.monotonic() + 10
    while not any("vanished" in line for line in rig.reports):
        assert time.monotonic() < deadline, rig.reports
        time.sleep(0.05)
    time.sleep(1.5)  # three polls with the port gone: still one report
    assert sum("vanished" in line for line in rig.reports) == 1
    rig.client.send("/ravelive/latent/0/bias", 0.0)
    assert wait_for(rig.client, "latent/0/bias", 0.0) == 0.0
    rig.sender.open()
    plugged = time.monotonic()
    for _ in range(120):
        rig.sender.send([0xB0, 1, 0])
        if query(rig.client, "latent/0/bias") == pytest.approx(-2.0):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"not reconnected after 12 s: {rig.reports}")
    print(f"reconnected {time.monotonic() - plugged:.2f} s after the port came back (poll every 0.5 s)")
    vanished = next(i for i, line in enumerate(rig.reports) if "vanished" in line)
    assert sum("connected" in line for line in rig.reports[vanished:]) == 1  # JACK may rename it
