"""`ravelive serve` as a new user starts it: the device's rate by default, and one clear line for every failure."""

import re
import socket
import subprocess
import sys

import pytest

SECONDS = 2


def serve(env, *options, timeout=120):
    return subprocess.run([sys.executable, "-m", "ravelive", "serve", "--no-discovery", *map(str, options)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_a_44k_model_on_a_48k_jack_server_runs_at_the_servers_rate_resampled(jack_server, sr44100_model_path):
    result = serve(jack_server.env, "--device", "system", "--no-osc", "--model", sr44100_model_path,
                   "--duration", SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "at 48000 Hz (resampled from the model's 44100 Hz)" in result.stdout
    assert "callback errors 0" in result.stdout.split("summary:")[1]


def test_samplerate_still_forces_a_rate(jack_server, sr44100_model_path):
    result = serve(jack_server.env, "--device", "system", "--no-osc", "--model", sr44100_model_path,
                   "--samplerate", 44100, "--duration", SECONDS)
    assert result.returncode == 1
    assert re.fullmatch(r"Error: JACK client 'system' cannot run 1 channels at 44100 Hz.*48000 Hz.*\n", result.stderr)


@pytest.fixture(scope="module")
def jack_at_128():
    """A JACK server at 128 frames per period: half the default, as many musicians run it."""
    from jack_server import JackServer

    server = JackServer(sample_rate=48000, period=128).start()
    yield server
    server.stop()


def test_on_jack_the_period_is_the_servers_own_by_default(jack_at_128):
    result = serve(jack_at_128.env, "--device", "system", "--no-osc", "--duration", SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "block 512, period 128;" in result.stdout
    assert "callback errors 0" in result.stdout.split("summary:")[1]


def test_period_still_forces_one_and_jack_refuses_another_before_the_warm_up(jack_at_128):
    result = subprocess.run([sys.executable, "-m", "ravelive", "-v", "serve", "--no-discovery", "--device", "system",
                             "--no-osc", "--period", "256"], env=jack_at_128.env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert re.fullmatch(r"Error: JACK client 'system' cannot run 1 channels at 48000 Hz, period 256: the server runs "
                        r"128 frames per period; start jackd with -r 48000 -p 256, or give serve the server's "
                        r"--samplerate and --period\n", result.stderr.splitlines(keepends=True)[-1])
    assert "warm-up" not in result.stderr  # -v logs the warm-up: it never started


@pytest.fixture
def busy_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        yield taken.getsockname()[1]


@pytest.mark.parametrize("failure", ["rate", "busy port"])
def test_settings_that_cannot_run_are_refused_before_the_model_warms_up(jack_server, sr44100_model_path,
                                                                         busy_udp_port, failure):
    options, expected = {
        "rate": (["--no-osc", "--samplerate", 44100], "the server runs at 48000 Hz"),
        "busy port": (["--osc-port", busy_udp_port], f"OSC port {busy_udp_port}"),
    }[failure]
    result = subprocess.run([sys.executable, "-m", "ravelive", "-v", "serve", "--no-discovery", "--device", "system",
                             "--model", sr44100_model_path, *map(str, options)],
                            env=jack_server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "warm-up" not in result.stderr  # -v logs the warm-up: it never started


@pytest.mark.parametrize("failure", ["bad device", "bad rate", "busy port", "bad model"])
def test_every_start_up_failure_is_one_line_and_a_non_zero_exit(jack_server, busy_udp_port, tmp_path, failure):
    options = {
        "bad device": ["--device", "no-such-device", "--no-osc"],
        "bad rate": ["--device", "system", "--samplerate", 12345, "--no-osc"],
        "busy port": ["--device", "system", "--osc-port", busy_udp_port],
        "bad model": ["--device", "system", "--no-osc", "--model", tmp_path / "missing.ts"],
    }[failure]
    result = serve(jack_server.env, *options, "--duration", SECONDS)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
    expected = {"bad device": "no-such-device", "bad rate": "12345", "busy port": str(busy_udp_port),
                "bad model": "missing.ts"}[failure]
    assert expected in errors[0]
