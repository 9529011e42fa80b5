"""The MIDI commands over OSC when the server runs without MIDI: answered, not ignored."""

import pytest


@pytest.mark.parametrize("address, arguments", [("/ravelive/midi/learn", ["mix"]), ("/ravelive/midi/forget", ["mix"]),
                                                ("/ravelive/midi/map", []), ("/ravelive/midi/reload", [])])
def test_midi_commands_without_midi_say_how_to_start_it(client, address, arguments):
    client.send(address, *arguments)
    reply = client.expect("/ravelive/error")
    assert "start the server with --midi-in" in reply[-1]
