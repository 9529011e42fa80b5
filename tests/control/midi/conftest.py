"""Real MIDI ports for the MIDI tests: python-rtmidi's JACK backend on a `jackd -d dummy` server."""

import os

import pytest


@pytest.fixture(scope="module")
def jack_midi(jack_server):
    """The module's JACK server, reachable by in-process rtmidi clients (they read the environment)."""
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=jack_server.name, JACK_NO_START_SERVER="1")
    yield jack_server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
