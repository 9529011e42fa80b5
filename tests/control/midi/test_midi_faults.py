"""Bad MIDI input and bad mapping files: counted, answered, and the daemon and its audio never stop."""

import re
import time

import pytest
from click.testing import CliRunner

from midi_helpers import Sender, status
from osc_helpers import Client
from ravelive.cli import main
from ravelive.control.midi.mapping import MappingFileError
from ravelive.control.midi.service import MidiConfig, MidiService
from ravelive.control.osc import OscConfig
from ravelive.control.service import ControlService
from ravelive.errors import ParameterError
from ravelive.config import ServeConfig
from ravelive.daemon import run
from ravelive.server import Server
from test_serve_control import BLOCK, MARGIN_MS, assert_played_the_input_exactly

SYSEX_FLOOD = 10_000
CLIPPED_MAP = """\
[[map]]  # beyond mix's range [0, 1]: every value clips to 1, so the audio stays the input
target = "mix"
cc = 1
min = 1
max = 3

[[map]]  # 127/127 deselects: data sent after it must not reach this (it would clip gain/out to +24 dB)
target = "gain/out"
nrpn = 0
min = 0
max = 100
"""
EVERY_FAULT = """\
knobs = 8
[[map]]
target = "latent/9/bias"
cc = 1
[[map]]
target = "mix"
cc = 128
channel = 17
curv = 2
[[map]]
target = "mix"
nrpn = 16384
mode = "relative"
[program]
channel = 0
"""


def test_bad_bytes_and_a_sysex_flood_are_counted_and_the_audio_plays_on(jack_midi, identity_model_path, noise_file,
                                                                        tmp_path):
    map_file = tmp_path / "map.toml"
    map_file.write_text(CLIPPED_MAP)
    sender = Sender("faulty")
    server = Server(ServeConfig(model=identity_model_path, input_device="none", output_device="none",
                                input_file=noise_file, output_file=tmp_path / "out.wav", realtime=False, block=BLOCK,
                                latency_margin_ms=MARGIN_MS, limiter=False))  # the output compared bit for bit
    midi = MidiService.start(server.controls, MidiConfig(inputs=("faulty",), api="jack", map_file=map_file))
    server.midi_status = midi.status
    server.start()
    control = ControlService.start(server, OscConfig(port=0), discovery=False)
    client = Client(control.osc.address)
    try:
        deadline = time.monotonic() + 10
        while "in: none" in midi.describe():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        bad = [
            ([7, 1], "stray_data"),  # running status with no status before it
            ([0xB0, 1], "truncated"),
            ([0x90, 60], "truncated"),
            ([0xF4], "unknown_status"),
            ([0xF5], "unknown_status"),
            ([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], "sysex"),
        ]
        for message, _ in bad:
            for _ in range(100):
                sender.send(message)
            time.sleep(0.01)
        for _ in range(100):
            sender.send([0xB0, 1, 127], [1, 0], [1, 64])  # running status, out-of-range map: clipped to mix = 1
            sender.send([0xB0, 99, 127], [0xB0, 98, 127], [0xB0, 6, 127], [0xB0, 38, 127])  # 127/127: null, not 16383
        for burst in range(SYSEX_FLOOD // 20):
            for _ in range(20):
                sender.send([0xF0, 0x43, 0x10, burst % 128, 0x01, 0x02, 0x03, 0xF7])
            time.sleep(0.002)  # 10,000 in about 2 s, at most a few hundred per JACK period: nothing is lost in JACK
        expected = {"stray_data": 100, "truncated": 200, "unknown_status": 200, "sysex": 100 + SYSEX_FLOOD}
        deadline = time.monotonic() + 20
        while any(midi.faults[kind] < count for kind, count in expected.items()) and time.monotonic() < deadline:
            time.sleep(0.05)
        items = status(client)
        assert {kind: items[f"midi/{kind}"] for kind in expected} == expected
        assert items["midi_faults"] == sum(expected.values()) and items["midi/internal"] == 0
        assert query_value(client, "mix") == 1.0 and query_value(client, "gain/out") == 0.0
        time.sleep(1.0)
    finally:
        client.close()
        control.close()
        midi.close()
        server.stop()
        sender.close()
    final = server.status()
    assert final["late_blocks"] == 0 and final["callback_errors"] == 0 and final["model_errors"] == 0
    assert_played_the_input_exactly(server, noise_file, tmp_path)


def query_value(client, name):
    client.send(f"/ravelive/{name}")
    return client.expect(f"/ravelive/{name}")[0]


def test_a_bad_mapping_file_refuses_to_start(identity_model_path, noise_file, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EVERY_FAULT)
    config = ServeConfig(model=identity_model_path, input_device="none", output_device="none", input_file=noise_file,
                         realtime=False, block=BLOCK, duration=5, midi=MidiConfig(map_file=bad, api="jack"))
    with pytest.raises(MappingFileError) as raised:
        run(config, report=lambda line: None)
    lines = [problem.split(": ")[0].rsplit(":", 1)[1] for problem in raised.value.problems]
    assert lines == ["1", "3", "7", "8", "9", "12", "13", "15"]


def test_midi_check_lists_every_fault_with_its_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EVERY_FAULT)
    result = CliRunner().invoke(main, ["midi", "check", str(bad)])
    assert result.exit_code == 1
    assert len(re.findall(rf"^{re.escape(str(bad))}:\d+: ", result.output, re.MULTILINE)) == 8
    assert "8 fault(s)" in result.output
    good = tmp_path / "good.toml"
    good.write_text(CLIPPED_MAP)
    result = CliRunner().invoke(main, ["midi", "check", str(good)])
    assert result.exit_code == 0 and f"{good}:1: mix <- cc 1 on any channel" in result.output


def test_a_missing_backend_or_port_is_one_line_and_the_rest_runs(store, jack_midi, monkeypatch):
    lines = []
    midi = MidiService.start(store, MidiConfig(inputs=("x",), api="alsa"), report=lines.append)
    midi.close()
    assert len(lines) == 1 and "MIDI backend" in lines[0] and "runs without MIDI" in lines[0]
    assert midi.status()["midi"]["ports"] == "no MIDI backend"
    lines.clear()
    midi = MidiService.start(store, MidiConfig(inputs=("no such box",), outputs=("no leds",), api="jack"),
                             report=lines.append)
    time.sleep(1.2)  # two polls more
    midi.close()
    assert [line.split(" (")[0] for line in lines] == ["MIDI input 'no such box' not found",
                                                       "MIDI output 'no leds' not found"]
    with pytest.raises(Exception, match="no MIDI ports are open"):
        MidiService(store, MidiConfig(), midi._map, None, lines.append).learn("mix", lambda error: None)


def test_learn_of_an_unknown_parameter_refuses_to_start(store, jack_midi):
    with pytest.raises(ParameterError, match="latent/99/bias: no such parameter"):
        MidiService.start(store, MidiConfig(api="jack", learn="latent/99/bias"), report=lambda line: None)
    with pytest.raises(ParameterError, match="holds text"):
        MidiService.start(store, MidiConfig(api="jack", learn="method"), report=lambda line: None)
