"""Test helpers for the control layer: a stand-in daemon and an OSC client on loopback.

`Daemon` stands in for `ravelive.server` (issue 3) behind the ControlledServer
interface: it reports a status and loads real model files on a thread.
"""

import queue
import socket
import threading
import time
from pathlib import Path
from typing import IO

from ravelive.control.osc_wire import build_message, parse_packet
from ravelive.errors import RaveliveError
from ravelive.models.nn_model import NNModel

REPLY_SECONDS = 5.0  # generous: two cores shared with other test runs


class Daemon:
    """The ControlledServer interface over a real NNModel, without audio."""

    def __init__(self, path: Path) -> None:
        self.model = NNModel.load(path)
        self.loads: list[Path] = []
        self.played: list = []  # latent sequences handed to play_latents

    def status(self) -> dict:
        return {"model": self.model.path.name, "method": "forward", "sample_rate": 48000, "block": 64,
                "latency": 64, "cpu_load": 0.25, "late_blocks": 0, "xruns": 0}

    def load_model(self, path, method=None, done=None):
        def load():
            try:
                self.model = NNModel.load(path)
                self.loads.append(Path(path))
                error = None
            except RaveliveError as failure:
                error = failure
            if done is not None:
                done(error)

        threading.Thread(target=load, daemon=True).start()

    def reload_model(self, done=None):
        self.load_model(self.model.path, None, done)

    def latent_dims(self) -> int:
        return self.model.methods["encode"].out_channels if "encode" in self.model.methods else 0

    def play_latents(self, frames):
        self.played.append(frames)


class Client:
    """A UDP OSC client on loopback that sends messages and collects replies."""

    def __init__(self, server_address) -> None:
        self.server_address = server_address
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    def send(self, address: str, *arguments) -> None:
        self.socket.sendto(build_message(address, arguments), self.server_address)

    def send_raw(self, data: bytes) -> None:
        self.socket.sendto(data, self.server_address)

    def receive(self, timeout: float = REPLY_SECONDS) -> list:
        """The next packet's messages, or [] after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = self.socket.recvfrom(65536)
            except TimeoutError:
                continue
            return parse_packet(data)
        return []

    def expect(self, address: str, timeout: float = REPLY_SECONDS) -> list:
        """The arguments of the next message to `address` (others are skipped); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            for got, arguments in self.receive(deadline - time.monotonic()):
                if got == address:
                    return arguments
                seen.append((got, arguments))
        raise AssertionError(f"no {address} within {timeout} s; got {seen[:10]}")

    def silent(self, seconds: float = 0.3) -> list:
        """Every message that arrives within `seconds` (expected: none)."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got.extend(self.receive(deadline - time.monotonic()))
        return got

    def close(self) -> None:
        self.socket.close()


def free_udp_port() -> int:
    """A UDP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrintedLines:
    """The lines a subprocess prints (oscdump, Pd), read on a thread so waiting for one has a deadline."""

    def __init__(self, stream: IO[str], program: str) -> None:
        self.program = program
        self.seen: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._lines.put(line.strip()) for line in stream], daemon=True).start()

    def wait_for(self, text: str, deadline: float) -> str:
        """The first new line containing `text`, printed before time.monotonic() reaches `deadline`."""
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{self.program} printed no {text!r} in time; it printed {self.seen}")
