"""`ravelive serve` with MIDI options, as a process: a virtual input, --learn writing the map, a missing backend."""

import subprocess
import sys
import time
import tomllib

import rtmidi

from osc_helpers import PrintedLines


def serve(env, *options):
    command = [sys.executable, "-m", "ravelive", "serve", "--no-osc", "--no-realtime", *map(str, options)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_learn_from_the_command_line_on_a_virtual_input(jack_midi, identity_model_path, noise_file, tmp_path):
    map_file = tmp_path / "learned.toml"
    process = serve(jack_midi.env, "--model", identity_model_path, "--input", noise_file, "--block", 256,
                    "--duration", 20, "--midi-api", "jack", "--midi-virtual", "ravelive-in", "--midi-map", map_file,
                    "--learn", "gain/out")
    lines = PrintedLines(process.stdout, "ravelive serve")
    try:
        lines.wait_for("does not exist yet", time.monotonic() + 60)
        lines.wait_for("MIDI in: (virtual)", time.monotonic() + 60)
        controller = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-cli")
        index = next(i for i, name in enumerate(controller.get_ports()) if "ravelive-in" in name)
        controller.open_port(index)
        for value in (10, 11, 12, 13):
            controller.send_message([0xB3, 74, value])
        lines.wait_for("gain/out is bound", time.monotonic() + 10)
        controller.delete()
    finally:
        process.terminate()
        process.wait(30)
    assert tomllib.loads(map_file.read_text())["map"] == [{"target": "gain/out", "cc": 74, "channel": 4}]


def test_without_a_midi_backend_serve_says_so_once_and_plays(identity_model_path, noise_file, tmp_path):
    process = serve(None, "--model", identity_model_path, "--input", noise_file, "--output", tmp_path / "out.wav",
                    "--block", 256, "--duration", 2, "--midi-api", "alsa", "--midi-in", "knobs")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-2000:]
    assert output.count("MIDI backend") == 1 and "The server runs without MIDI" in output
    assert "MIDI off (no backend)" in output and "summary:" in output


def test_midi_ports_lists_names_for_the_patterns(jack_midi):
    from click.testing import CliRunner

    from midi_helpers import Receiver, Sender
    from ravelive.cli import main

    sender, receiver = Sender("box-knobs", client="cli-box"), Receiver("box-leds", client="cli-leds")
    try:
        result = CliRunner().invoke(main, ["midi", "ports", "--midi-api", "jack"])
    finally:
        sender.close()
        receiver.close()
    assert result.exit_code == 0, result.output
    assert "in  cli-box:box-knobs" in result.output.splitlines() and "out cli-leds:box-leds" in result.output
