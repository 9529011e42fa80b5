"""The OSC server against liblo's oscsend and oscdump: an independent OSC implementation both ways."""

import shutil
import subprocess
import time

import pytest

from osc_helpers import PrintedLines, free_udp_port

pytestmark = pytest.mark.skipif(not shutil.which("oscsend") or not shutil.which("oscdump"),
                                reason="liblo-tools (oscsend, oscdump) not installed")


@pytest.fixture
def dump():
    """oscdump on a free port and a function waiting for a line it prints; stopped after the test."""
    port = free_udp_port()
    process = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    printed = PrintedLines(process.stdout, "oscdump")

    def read_until(prefix: str, timeout: float = 5.0) -> str:
        return printed.wait_for(prefix, time.monotonic() + timeout)

    time.sleep(0.3)  # let oscdump bind
    yield port, read_until
    process.terminate()
    process.wait(timeout=5)


def oscsend(server, address: str, types: str = "", *values) -> None:
    host, port = server.address
    subprocess.run(["oscsend", host, str(port), address, types, *map(str, values)], check=True, timeout=10)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not apply the message in time"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "address, types, values, name, stored",
    [("/ravelive/latent/0/bias", "f", [1.5], "latent/0/bias", 1.5),
     ("/ravelive/latent/0/bias", "d", [-2.25], "latent/0/bias", -2.25),
     ("/ravelive/latent/0/bias", "i", [2], "latent/0/bias", 2.0),
     ("/ravelive/latent/1/freeze", "T", [], "latent/1/freeze", True),
     ("/ravelive/bypass", "h", [1], "bypass", True),
     ("/ravelive/method", "s", ["decode"], "method", "decode")],
)
def test_oscsend_sets_parameters(osc_server, store, address, types, values, name, stored):
    oscsend(osc_server, address, types, *values)
    wait_for(lambda: store.get(name) == stored)


@pytest.mark.parametrize(
    "address, types, values",
    [("/ravelive/latent/0/bias", "s", ["high"]), ("/ravelive/latent/0/bias", "f", [99.0]),
     ("/ravelive/latent/0/bias", "c", ["x"]), ("/ravelive/latent/0/bias", "m", ["1", "2", "3", "4"]),
     ("/ravelive/nothing", "f", [1.0]), ("/ravelive/latent/0/freeze", "N", [])],
)
def test_oscsend_refusals_are_counted(osc_server, store, address, types, values):
    oscsend(osc_server, address, types, *values)
    wait_for(lambda: sum(osc_server.faults.values()) == 1)
    assert store.get("latent/0/bias") == 0.0


def test_oscdump_receives_replies_errors_status_and_feedback(osc_server, client, dump):
    port, read_until = dump
    client.send("/ravelive/notify", 1, port)  # this client's replies and feedback go to oscdump
    assert read_until("/ravelive/notify").split()[-1] == "1"
    client.send("/ravelive/latent/2/scale")
    assert read_until("/ravelive/latent/2/scale").endswith("f 1.000000")
    client.send("/ravelive/latent/2/scale", 9.0)
    assert "latent/2/scale: 9.0 is out of range [-4, 4]" in read_until("/ravelive/error")
    client.send("/ravelive/status")
    assert read_until("/ravelive/status/model").endswith('"codec.ts"')
    client.send("/ravelive/ping", 3)
    assert read_until("/ravelive/pong").endswith("i 3")
    oscsend(osc_server, "/ravelive/latent/2/noise", "f", 0.5)  # another client's change is pushed
    assert read_until("/ravelive/latent/2/noise").endswith("f 0.500000")
    oscsend(osc_server, "/ravelive/latent/3/freeze", "F")
    assert read_until("/ravelive/latent/3/freeze").endswith("i 0")
