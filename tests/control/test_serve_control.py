"""OSC against the real daemon (ravelive.server, file mode, no sound card): bad input and floods leave the audio intact."""

import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile

from osc_helpers import Client
from ravelive.control.osc import OscConfig
from ravelive.control.service import ControlService
from ravelive.config import ServeConfig
from ravelive.daemon import run
from ravelive.server import Server
from test_fuzz import bad_packet

FLOOD = """
import socket, sys, time
from ravelive.control.osc_wire import build_message
messages = [build_message("/ravelive/mix", [1.0]), build_message("/ravelive/mix", []),
            build_message("/ravelive/gain/out", [99.0]), build_message("/ravelive/nothing", [1])]
sender, sent, start = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0, time.monotonic()
while (elapsed := time.monotonic() - start) < 5.0:
    while sent < int(elapsed * 20000):
        sender.sendto(messages[sent % len(messages)], ("127.0.0.1", int(sys.argv[1])))
        sent += 1
    time.sleep(0.002)
print(sent)
"""  # 20,000 messages per second for 5 s: parameter writes, queries, refusals, unknown addresses
RATE = 48000
MARGIN_MS = 100  # room for the other processes of a shared 2-core test machine; OSC must not need any of it
BLOCK = 512



class Served:
    """A running Server on the identity model with OSC on a free port."""

    def __init__(self, config: ServeConfig) -> None:
        self.server = Server(config)
        self.server.start()
        self.started = time.monotonic()
        self.control = ControlService.start(self.server, OscConfig(port=0), discovery=False)
        self._finished = False

    def finish(self, at_least: float = 2.0) -> dict:
        """Stop (after `at_least` seconds of audio) and return the final status; safe to call twice."""
        if not self._finished:
            time.sleep(max(0.0, self.started + at_least - time.monotonic()))
            self._finished = True
            self.control.close()
            self.server.stop()
        return self.server.status()


@pytest.fixture
def served(identity_model_path, noise_file, tmp_path):
    config = ServeConfig(model=identity_model_path, input_device="none", output_device="none", input_file=noise_file,
                         output_file=tmp_path / "out.wav", realtime=False, block=BLOCK, latency_margin_ms=MARGIN_MS,
                         limiter=False)  # the recording is compared with the input bit for bit
    served = Served(config)
    yield served
    served.finish(0.0)


def assert_played_the_input_exactly(server, noise_file, tmp_path):
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    source, _ = soundfile.read(noise_file, dtype="float32")
    expected = np.tile(source, len(played) // len(source) + 2)
    latency = server.status()["latency"]
    assert len(played) > RATE
    np.testing.assert_array_equal(played[latency:], expected[: len(played) - latency])


def test_malformed_packets_leave_the_audio_untouched(served, noise_file, tmp_path):
    server, control = served.server, served.control
    defaults = server.controls.values()
    client = Client(control.osc.address)
    rng = np.random.default_rng(7)
    for start in range(0, 2000, 100):
        for _ in range(100):
            client.send_raw(bad_packet(rng))
        deadline = time.monotonic() + 10
        while sum(control.osc.faults.values()) < start + 100 and time.monotonic() < deadline:
            time.sleep(0.005)
    client.close()  # its receive buffer overflowed with error replies: ask with a fresh one
    listener = Client(control.osc.address)
    listener.send("/ravelive/ping")
    assert listener.expect("/ravelive/pong") == []
    listener.close()
    status = served.finish()
    assert sum(control.osc.faults.values()) == 2000 and control.osc.faults["internal"] == 0
    assert server.controls.values() == defaults
    assert status["late_blocks"] == 0 and status["callback_errors"] == 0 and status["model_errors"] == 0
    assert_played_the_input_exactly(server, noise_file, tmp_path)


def test_a_flood_of_20000_messages_per_second_causes_no_late_blocks(served, noise_file, tmp_path):
    server, control = served.server, served.control
    late_before = server.status()["late_blocks"]
    flood = subprocess.run([sys.executable, "-c", FLOOD, str(control.osc.address[1])],
                           capture_output=True, text=True, timeout=60, check=True)  # another process, as in real life
    sent = int(flood.stdout)
    time.sleep(0.5)
    status = served.finish()
    assert sent >= 95000
    assert status["late_blocks"] == late_before == 0 and status["callback_errors"] == 0
    assert control.osc.handled > 0 and control.osc.faults["flood_dropped"] > 0
    assert_played_the_input_exactly(server, noise_file, tmp_path)


def test_selecting_encode_over_udp_is_refused_naming_the_flag_and_forward_keeps_playing(noise_file):
    served = Served(ServeConfig(input_device="none", output_device="none", input_file=noise_file, realtime=False,
                                latency_margin_ms=MARGIN_MS))  # the bundled model: forward, encode, decode, prior
    try:
        client = Client(served.control.osc.address)
        for method in ("encode", "prior"):
            client.send("/ravelive/method", method)
            address, message = client.expect("/ravelive/error")
            assert address == "/ravelive/method"
            assert message.startswith(f"method: '{method}' outputs 8 channels at 1/512 of the audio rate, not audio")
            assert "/ravelive/allow_control_output 1" in message
        client.send("/ravelive/method")
        assert client.expect("/ravelive/method") == ["forward"]
        client.close()
        assert not served.server.realtime.swapping
    finally:
        status = served.finish(0.5)
    assert status["method"] == "forward"


def test_a_nan_burst_is_reported_to_subscribers_and_counted_in_the_status(nan_model_path, noise_file):
    config = ServeConfig(model=nan_model_path, input_device="none", output_device="none", input_file=noise_file,
                         realtime=False, block=BLOCK, latency_margin_ms=MARGIN_MS, duration=3.0,
                         osc=OscConfig(port=0), discovery=False)
    ports, done = [], []

    def report(line: str) -> None:
        found = re.search(r"OSC on udp://[\d.]+:(\d+)", line)
        if found:
            ports.append(int(found.group(1)))

    serving = threading.Thread(target=lambda: done.append(run(config, report)), daemon=True)
    serving.start()
    deadline = time.monotonic() + 60
    while not ports and time.monotonic() < deadline:
        time.sleep(0.05)
    client = Client(("127.0.0.1", ports[0]))
    try:
        client.send("/ravelive/notify", 1)
        client.expect("/ravelive/notify")
        client.send("/ravelive/gain/in", 24.0)  # 0.5 x 15.8: past the model's NaN trigger
        address, message = client.expect("/ravelive/error")
        assert address == "/ravelive/status/nonfinite_blocks"
        assert "output NaN/Inf: playing the dry input in its place, model state reset" in message
        client.send("/ravelive/gain/in", 0.0)
        client.send("/ravelive/status")
        assert client.expect("/ravelive/status/nonfinite_blocks")[0] >= 1
    finally:
        client.close()
        serving.join(30)
    assert done and done[0]["nonfinite_blocks"] >= 1 and done[0]["model_errors"] == 0
