"""10,000 random and malformed packets: the server keeps running, changes nothing, counts each fault."""

import struct
import time
from pathlib import Path

import numpy as np
import pytest

from osc_helpers import Client
from ravelive.control.osc import MAX_PACKET_BYTES, OscConfig, OscServer
from ravelive.control.osc_wire import build_message

PACKETS = 10_000
VALID = build_message("/ravelive/latent/0/bias", [1.0])  # 24 bytes of address, then ",f" and the float
ADDRESS_ONLY = 24  # a prefix of exactly this length is a valid query, not a fault


def pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def bundle(*elements: bytes, sizes=None) -> bytes:
    body = b"".join(struct.pack(">i", len(e) if sizes is None else sizes) + e for e in elements)
    return b"#bundle\0" + b"\0" * 7 + b"\1" + body


def bad_packet(rng: np.random.Generator) -> bytes:
    """One packet that must produce exactly one fault."""
    kind = rng.integers(12)
    if kind == 0:  # truncated
        cut = int(rng.integers(1, len(VALID)))
        return VALID[:cut] if cut != ADDRESS_ONLY else VALID[:cut - 1]
    if kind == 1:  # type tags we do not read
        tags = "".join(rng.choice(list("cmrtxu[]"), size=rng.integers(1, 5)))
        return pad(b"/ravelive/latent/0/bias") + pad(("," + tags).encode()) + rng.bytes(4 * int(rng.integers(0, 4)))
    if kind == 2:  # wrong types for a float parameter: text, T, F, nil
        tags = [b",s", b",T", b",F", b",N"][int(rng.integers(4))]
        return pad(b"/ravelive/latent/0/bias") + pad(tags) + (pad(b"loud") if tags == b",s" else b"")
    if kind == 3:  # a blob where a float belongs
        blob = rng.bytes(int(rng.integers(0, 64)))
        return pad(b"/ravelive/latent/0/bias") + pad(b",b") + struct.pack(">i", len(blob)) + pad(blob)
    if kind == 4:  # out of range, not finite, too many values
        return build_message("/ravelive/latent/1/scale", [rng.choice([1e3, -1e9, float("nan"), float("inf")])]) \
            if rng.integers(2) else build_message("/ravelive/mix", [0.5, 0.5])
    if kind == 5:  # huge
        return rng.bytes(int(rng.integers(MAX_PACKET_BYTES + 1, 65000)))
    if kind == 6:  # addresses that do not exist
        word = "".join(rng.choice(list("abcxyz019/"), size=rng.integers(1, 40)))
        return build_message(rng.choice(["/ravelive/", "/", "/other/"]) + word, [1.0])
    if kind == 7:  # random bytes not starting like a message or a bundle
        return bytes([int(rng.integers(48, 58))]) + rng.bytes(int(rng.integers(0, 512)))
    if kind == 8:  # a bundle whose element size lies
        return bundle(VALID, sizes=int(rng.choice([-4, 0, 3, 4096])))
    if kind == 9:  # bundles nested too deep
        packet = VALID
        for _ in range(int(rng.integers(9, 40))):
            packet = bundle(packet)
        return packet
    if kind == 10:  # a well-formed bundle holding one bad message
        return bundle(build_message("/ravelive/latent/0/nothing", [1.0]))
    commands = [("/ravelive/notify", ["yes"]), ("/ravelive/notify", [1, 99999]), ("/ravelive/model/load", [3]),
                ("/ravelive/model/load", ["../../etc/passwd"]), ("/ravelive/preset/load", ["/etc/passwd"])]
    address, arguments = commands[int(rng.integers(len(commands)))]
    return build_message(address, arguments)


@pytest.fixture
def fuzzed_server(store, daemon, models_dir, tmp_path):
    config = OscConfig(port=0, models_dir=models_dir, presets_dir=tmp_path, max_messages_per_second=1e9)
    with OscServer(store, daemon, config) as server:
        yield server


def test_random_and_malformed_packets_are_each_counted(fuzzed_server, store):
    rng = np.random.default_rng(20240521)
    defaults = store.values()
    client = Client(fuzzed_server.address)
    try:
        for start in range(0, PACKETS, 100):
            for _ in range(100):
                client.send_raw(bad_packet(rng))
            deadline = time.monotonic() + 10
            while sum(fuzzed_server.faults.values()) < start + 100 and time.monotonic() < deadline:
                time.sleep(0.005)  # paced so the kernel's receive buffer never drops one
        assert sum(fuzzed_server.faults.values()) == PACKETS, dict(fuzzed_server.faults)
        assert fuzzed_server.faults["internal"] == 0
        assert store.values() == defaults
        listener = Client(fuzzed_server.address)
        listener.send("/ravelive/ping", 1)
        assert listener.expect("/ravelive/pong") == [1]
        listener.close()
    finally:
        client.close()


def kernel_drops(port: int) -> int:
    """Datagrams Linux dropped for the UDP socket on `port` (its receive buffer was full): /proc/net/udp."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[-1])
    raise AssertionError(f"no UDP socket on port {port} in /proc/net/udp")


def test_a_flood_beyond_the_message_budget_is_dropped_and_counted(store, daemon):
    with OscServer(store, daemon, OscConfig(port=0, max_messages_per_second=1000)) as server:
        client = Client(server.address)
        for _ in range(3000):
            client.send("/ravelive/latent/0/bias", 0.5)

        def accounted() -> int:  # the kernel drops what a busy machine's server thread cannot take in time
            return server.faults["flood_dropped"] + server.handled + kernel_drops(server.address[1])

        deadline = time.monotonic() + 10
        while accounted() < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.faults["flood_dropped"] > 0 and server.handled > 0
        assert accounted() == 3000
        client.close()
