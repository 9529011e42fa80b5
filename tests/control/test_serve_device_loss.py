"""A running `ravelive serve` tells its OSC subscribers when the audio device goes away and when it is back."""

import subprocess
import sys
import time

from jack_server import JackServer
from osc_helpers import Client, PrintedLines, free_udp_port

RATE = 48000


def test_subscribers_hear_the_jack_server_go_and_come_back(identity_model_path):
    jack = JackServer(sample_rate=RATE, period=256).start()
    port = free_udp_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "ravelive", "serve", "--device", "system", "--model", str(identity_model_path),
         "--block", "256", "--osc-port", str(port), "--no-discovery", "--no-realtime"],
        env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        PrintedLines(serve.stdout, "ravelive serve").wait_for("OSC on", time.monotonic() + 60)
        client = Client(("127.0.0.1", port))
        client.send("/ravelive/notify", 1)
        assert client.expect("/ravelive/notify") == [1]
        jack.stop()
        assert client.expect("/ravelive/status/audio_state", timeout=10)[0] == "lost"
        assert client.expect("/ravelive/status/audio_state", timeout=10)[0] == "reopening"
        jack.start()  # the same server name
        state, device = client.expect("/ravelive/status/audio_state", timeout=10)
        assert state == "running" and "JACK" in device
        client.send("/ravelive/status")
        replies = {}
        deadline = time.monotonic() + 5
        while "device_reopens" not in replies and time.monotonic() < deadline:
            for address, arguments in client.receive(1.0):
                replies[address.rsplit("/", 1)[-1]] = arguments
        assert replies["audio_state"] == ["running"] and replies["device_losses"] == [1]
        assert replies["device_reopens"] == [1]
        client.close()
    finally:
        serve.terminate()
        serve.wait(30)
        jack.stop()
