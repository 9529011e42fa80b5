"""Eurorack CV and gates end to end: `ravelive serve` on a JACK dummy server, voltages fed by a JACK client.

A JACK-Client client plays a DC ramp into the server's second input port and
gate pulses into its third (in place of system:capture_2/3); the mapped
parameter comes back over OSC as the ramp rises, and each gate edge runs its
action exactly once.
"""

import itertools
import subprocess
import sys
import time

import pytest

from jack_server import JackServer
from osc_helpers import Client, free_udp_port

jack = pytest.importorskip("jack")

START_SECONDS = 60.0  # model load and warm-up on a shared 2-core machine
RAMP_SECONDS = 3.0
VOLTS_FULL_SCALE = 10.0  # the default calibration: a sample of 1.0 is 10 V (ES-8/ES-9)


@pytest.fixture(scope="module")
def jack4():
    """A dummy JACK server with four capture and four playback ports: audio on 1, CV and gates above."""
    server = JackServer(sample_rate=48000, period=256, ports=4).start()
    yield server
    server.stop()


class Voltages:
    """A JACK client whose output ports each play one DC value, set from the test thread."""

    def __init__(self, server_name: str, names: list[str]) -> None:
        self.client = jack.Client("cv-feeder", servername=server_name, no_start_server=True)
        self.ports = [self.client.outports.register(name) for name in names]
        self.monitor = self.client.inports.register("monitor")  # one output jack of the server, read back
        self.monitored = None  # the last sample it played
        self.values = [0.0] * len(names)
        self.ramp: tuple[int, float, float, float] | None = None  # port, start time, from, to
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if self.ramp is not None:
            index, started, low, high = self.ramp
            self.values[index] = low + (high - low) * min(1.0, (time.monotonic() - started) / RAMP_SECONDS)
        for port, value in zip(self.ports, self.values):
            port.get_array()[:] = value
        self.monitored = float(self.monitor.get_array()[-1])

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def ravelive_ports(client, timeout: float, inputs: bool = True) -> list[str]:
    """The input (or output) ports of the ravelive server (PortAudio's JACK client), in channel order."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = [port.name for port in client.get_ports(is_input=inputs, is_output=not inputs, is_audio=True)
                 if not port.name.startswith(("system:", "cv-feeder:"))]
        if len(ports) >= 4:
            return sorted(ports, key=lambda name: int("".join(filter(str.isdigit, name.split(":")[1])) or 0))
        time.sleep(0.2)
    raise AssertionError(f"no ravelive input ports within {timeout} s")


def subscribe(client: Client) -> None:
    """`/ravelive/notify 1` until confirmed (OSC starts just after the audio)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        client.send("/ravelive/notify", 1)
        if any(address == "/ravelive/notify" for address, _ in client.receive(0.5)):
            return
    raise AssertionError("the server never confirmed /ravelive/notify")


def status(client: Client) -> dict:
    client.send("/ravelive/status")
    found, deadline = {}, time.monotonic() + 5
    while "gate_actions" not in found and time.monotonic() < deadline:
        for address, arguments in client.receive(deadline - time.monotonic()):
            if address.startswith("/ravelive/status/"):
                found[address.rsplit("/", 1)[1]] = arguments[0]
    return found


def test_a_dc_ramp_moves_the_mapped_parameter_and_each_gate_edge_acts_once(jack4, codec_model_path, tmp_path):
    port = free_udp_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ravelive", "serve", "--device", "system", "--model", str(codec_model_path),
         "--channels", "1", "--cv-in", "2=gain/out:-24:0", "--gate-in", "3=freeze", "--cv-out", "4=level",
         "--osc-port", str(port), "--no-discovery", "--no-realtime", "--latency-margin", "50"],
        env=jack4.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    voltages = Voltages(jack4.name, ["cv", "gate"])
    osc = Client(("127.0.0.1", port))
    try:
        inputs = ravelive_ports(voltages.client, START_SECONDS)
        voltages.client.connect(ravelive_ports(voltages.client, START_SECONDS, inputs=False)[3], voltages.monitor)
        for channel, feeder in ((1, voltages.ports[0]), (2, voltages.ports[1])):
            for source in voltages.client.get_all_connections(inputs[channel]):
                voltages.client.disconnect(source, inputs[channel])
            voltages.client.connect(feeder, inputs[channel])
        voltages.values[0] = -0.5  # -5 V, the ramp's start, until the ramp starts
        subscribe(osc)
        osc.silent(0.5)  # the settling writes of the connection

        voltages.ramp = (0, time.monotonic(), -0.5, 0.3)  # -5 V .. +3 V: gain/out -24 .. -4.8 dB
        seen = []
        deadline = time.monotonic() + RAMP_SECONDS + 10
        while time.monotonic() < deadline and not (seen and abs(seen[-1] + 4.8) < 0.05):
            for address, arguments in osc.receive(0.5):
                if address == "/ravelive/gain/out":
                    seen.append(arguments[0])
        assert len(seen) >= 10, seen  # it followed the ramp, not one jump
        assert seen[0] < -20 and abs(seen[-1] + 4.8) < 0.05, seen
        assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(seen)), seen

        for _ in range(3):  # 5 V gates, 100 ms high, 100 ms low: three rising edges
            voltages.values[1] = 5.0 / VOLTS_FULL_SCALE
            time.sleep(0.1)
            voltages.values[1] = 0.0
            time.sleep(0.1)
        time.sleep(0.3)
        counters = status(osc)
        assert counters["gate_edges"] == 3 and counters["gate_actions"] == 3, counters
        osc.send("/ravelive/latent/0/freeze")
        assert osc.expect("/ravelive/latent/0/freeze") == [True]  # toggled three times: frozen
        assert voltages.monitored == pytest.approx(-0.5)  # --cv-out 4=level of a silent input: 0 -> -5 V
        assert process.poll() is None
    finally:
        osc.close()
        voltages.close()
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert "summary:" in out, out
