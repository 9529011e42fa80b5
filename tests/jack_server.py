"""A JACK server with the dummy driver, for tests and benchmarks: unique name, bounded start and stop.

Clients find it through the environment that `JackServer.env` returns
(JACK_DEFAULT_SERVER names it; JACK_NO_START_SERVER stops a client from
starting a server of its own when this one is gone).

It runs realtime (`jackd -R`, SCHED_FIFO) where this process may, as JACK
runs on a musician's machine; elsewhere (no rtprio) it says --no-realtime.
"""

import functools
import os
import shutil
import subprocess
import tempfile
import time
import uuid

START_SECONDS = 10.0  # jackd with the dummy driver is up in well under a second
STOP_SECONDS = 5.0


class JackServer:
    def __init__(self, sample_rate: int = 48000, period: int = 256, ports: int = 2):
        self.name = f"ravelive-test-{uuid.uuid4().hex[:8]}"
        self.sample_rate = sample_rate
        self.period = period
        self.ports = ports  # system:capture_N and system:playback_N, each
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}
        self._process: subprocess.Popen | None = None

    def start(self) -> "JackServer":
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RuntimeError("jackd is not installed (Debian: apt-get install jackd2)")
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall jackd on its next line
        self._process = subprocess.Popen(
            [jackd, "-R" if may_run_realtime() else "--no-realtime", "-n", self.name, "-d", "dummy",
             "-r", str(self.sample_rate), "-p", str(self.period), "-C", str(self.ports), "-P", str(self.ports)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self._log,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"jackd exited at start: {self.log()[-500:]}")
            probe = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True, timeout=START_SECONDS)
            if "system:playback_1" in probe.stdout:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jackd {self.name} did not come up within {START_SECONDS} s")

    def log(self) -> str:
        """What jackd has printed so far (its xrun reports among it)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def driver_xruns(self) -> int:
        """Cycles the dummy driver itself woke up late for (timer jitter of this machine), whoever the clients."""
        return self.log().count("JackTimedDriver::Process XRun")

    def late_cycles(self, client: str) -> list[str]:
        """jackd's lines saying that `client` did not finish its cycle in time."""
        return [line for line in self.log().splitlines() if f"client = {client} was not finished" in line]

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_SECONDS)
        self._process = None


@functools.cache
def may_run_realtime() -> bool:
    """Whether processes started from here may use SCHED_FIFO (root, or an rtprio limit)."""
    return shutil.which("chrt") is not None and subprocess.run(["chrt", "-f", "1", "true"]).returncode == 0
