"""Test helpers for MIDI: a controller (sending port), a feedback receiver, OSC value reads."""

import queue
import time

import rtmidi

from osc_helpers import Client


class Sender:
    """A controller: a JACK MIDI output port that another client (the server) connects to."""

    def __init__(self, port: str, client: str = "test-controller") -> None:
        self.port_name, self.client = port, client
        self.open()

    def open(self) -> None:
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, self.client)
        self.out.open_virtual_port(self.port_name)

    def send(self, *messages: list[int], pause: float = 0.0) -> None:
        for message in messages:
            self.out.send_message(message)
            if pause:
                time.sleep(pause)

    def close(self) -> None:
        self.out.close_port()
        self.out.delete()


class Receiver:
    """A motor-fader box: a JACK MIDI input port the server's feedback connects to."""

    def __init__(self, port: str, client: str = "test-leds") -> None:
        self.messages: queue.SimpleQueue = queue.SimpleQueue()
        self.port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client)
        self.port.ignore_types(sysex=False)
        self.port.set_callback(lambda event, data=None: self.messages.put(event[0]))
        self.port.open_virtual_port(port)

    def collect(self, count: int, timeout: float = 5.0) -> list[list[int]]:
        """The next `count` messages (fewer if they do not come within `timeout`)."""
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            try:
                got.append(self.messages.get(timeout=0.05))
            except queue.Empty:
                pass
        return got

    def drain(self, seconds: float = 0.3) -> list[list[int]]:
        time.sleep(seconds)
        got = []
        while not self.messages.empty():
            got.append(self.messages.get())
        return got

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()


def status(client: Client) -> dict:
    """/ravelive/status over OSC, as {name: value} (names below /ravelive/status/)."""
    client.send("/ravelive/status")
    items = {}
    while messages := client.receive(1.0):
        for address, arguments in messages:
            items[address.removeprefix("/ravelive/status/")] = arguments[0]
    return items


def query(client: Client, name: str):
    """The value of parameter `name`, read over OSC."""
    client.send(f"/ravelive/{name}")
    return client.expect(f"/ravelive/{name}")[0]


def wait_for(client: Client, name: str, expected, timeout: float = 5.0):
    """Query `name` over OSC until it equals `expected` (float32 precision); the last value read."""
    deadline = time.monotonic() + timeout
    while True:
        value = query(client, name)
        if _close(value, expected) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _close(value, expected) -> bool:
    if isinstance(expected, bool):
        return value == int(expected)
    return abs(value - expected) <= 1e-5 * max(1.0, abs(expected))
