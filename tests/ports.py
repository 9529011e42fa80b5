"""A free local TCP port, for the rendezvous of multi-process (torchrun-style) tests."""

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
