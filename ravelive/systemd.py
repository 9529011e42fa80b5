"""Running `ravelive serve` under systemd: the unit file and the sd_notify protocol.

sd_notify is one datagram to the unix socket named by $NOTIFY_SOCKET; we
write it ourselves (a dozen lines, no dependency, nothing to build on a
Raspberry Pi) rather than pull in a package. Outside systemd the variable is
unset and every call is a no-op.

The watchdog is only fed while the audio callback keeps running, so a
stream that stalls (a vanished device, a hung driver) gets the service
restarted instead of sitting silent for weeks.
"""

import os
import shlex
import socket
from pathlib import Path

WATCHDOG_SECONDS = 10  # WatchdogSec in the unit; the server pings at half of what systemd asks
RTPRIO = 95  # LimitRTPRIO: what the worker's SCHED_FIFO request may use


def notify(message: str) -> bool:
    """Send `message` ("READY=1", "WATCHDOG=1", "STOPPING=1" ...) to systemd; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2e6


def unit_file(serve_args: list[str], executable: str, user: str = "ravelive", working_directory: str | None = None) -> str:
    """A service unit that runs `executable serve serve_args` headless, restarted on failure."""
    command = shlex.join([str(Path(executable)), "serve", *serve_args])
    directory = f"WorkingDirectory={working_directory}\n" if working_directory else ""
    return f"""[Unit]
Description=ravelive: neural audio model server
Wants=sound.target
After=sound.target network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={command}
{directory}User={user}
Group=audio
SupplementaryGroups=audio
# realtime scheduling for the model worker, and memory that is never paged out
LimitRTPRIO={RTPRIO}
LimitMEMLOCK=infinity
Nice=-10
# restarted when it exits with an error or stops feeding the watchdog (a stalled audio stream)
Restart=on-failure
RestartSec=2
WatchdogSec={WATCHDOG_SECONDS}
TimeoutStopSec=10
KillSignal=SIGTERM

[Install]
WantedBy=multi-user.target
"""
