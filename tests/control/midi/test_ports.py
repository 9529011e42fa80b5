"""Port delivery on real JACK ports: rtmidi's queue (JACK's way) and the callback queue (ALSA's, CoreMIDI's)."""

import time

import pytest

from midi_helpers import Sender
from ravelive.control.midi.ports import MidiPorts, resolve_api


@pytest.mark.parametrize("callbacks", [False, True])
def test_every_message_arrives_in_order_either_way(jack_midi, callbacks):
    sender = Sender("delivery")
    ports = MidiPorts(resolve_api("jack"), ("delivery",), (), None, 4096, lambda line: None, callbacks=callbacks)
    ports.open()
    try:
        sent = [[0xB0 | channel, number, value] for channel in range(4) for number in range(10) for value in (0, 127)]
        sender.send(*sent)
        got, deadline = [], time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            ports.read(lambda data, port, when: got.append((list(data), port)), 256, 0.05)
    finally:
        ports.close()
        sender.close()
    assert [data for data, _ in got] == sent
    assert {port for _, port in got} == {"test-controller:delivery"} and ports.dropped == 0


def test_a_full_callback_queue_drops_and_counts(jack_midi):
    sender = Sender("burst")
    ports = MidiPorts(resolve_api("jack"), ("burst",), (), None, 10, lambda line: None, callbacks=True)
    ports.open()
    try:
        sender.send(*[[0x90, 60, 100]] * 50)
        time.sleep(0.5)  # nobody reads
        got = []
        ports.read(lambda data, port, when: got.append(data), 256, 0.1)
    finally:
        ports.close()
        sender.close()
    assert len(got) == 10 and ports.dropped == 40
