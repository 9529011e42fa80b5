"""`ravelive serve` end to end: JACK's dummy driver through PortAudio, file-only mode, signals, hot swap, late blocks."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from nn_fixtures import NAN_TRIGGER
from ravelive.cli import main
from ravelive.config import ServeConfig
from ravelive.control.osc import OscConfig
from ravelive.dsp.dc_blocker import DCBlocker
from ravelive.dsp.limiter import CEILING_DBTP, TruePeakLimiter
from ravelive.engine.stream import FixedLatency, StreamEngine
from ravelive.engine.warmup import margin_from_compute, nn_tilde_ceiling
from ravelive.errors import AudioDeviceError
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel
from ravelive.daemon import run
from ravelive.server import Server
from signals import true_peak

RATE = 48000
BLOCK = 256  # for the identity model (ratio 1: the smallest legal block would be 1)


def looped(path, frames):
    audio, _ = soundfile.read(path, dtype="float32")
    return np.tile(audio, frames // len(audio) + 1)[:frames]


def file_config(model, input_file, output_file, **options):
    return ServeConfig(model=model, input_device="none", output_device="none", input_file=input_file,
                       output_file=output_file, realtime=False, **options)


def default_model_output(audio: np.ndarray, latency: int) -> np.ndarray:
    """What serve plays for `audio` with the default model: warmed up on silence, then the DC blocker and the
    limiter (its lookahead is in the reported latency), delayed by `latency`."""
    model = NNModel.load(DEFAULT_MODEL_PATH)
    StreamEngine(model, sample_rate=RATE).push(np.zeros((1, 100 * 512), dtype=np.float32))  # as the warm-up
    stream = FixedLatency(StreamEngine(model, sample_rate=RATE))
    limiter = TruePeakLimiter(1, RATE)
    played = limiter.process(DCBlocker(1, RATE).process(stream.process(audio[None])))[0]
    return np.concatenate([np.zeros(latency - stream.latency - limiter.delay, dtype=np.float32), played])[: len(audio)]


def serve_on_jack(jack_server, *options):
    """`ravelive serve` through PortAudio's JACK host API; returns latency, alignment and margin."""
    result = subprocess.run([sys.executable, "-m", "ravelive", "serve", "--device", "system", "--no-osc", *map(str, options)],
                            env=jack_server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JACK Audio Connection Kit" in result.stdout
    numbers = re.search(r"latency (\d+) samples = [\d.]+ ms \(alignment (\d+) \+ margin (\d+)\)", result.stdout)
    summary = result.stdout.split("summary:")[1]
    assert " late 0 " in summary and "callback errors 0" in summary and "model errors 0" in summary, summary
    return tuple(map(int, numbers.groups()))


def test_serve_on_jack_runs_the_default_model_for_10_s_without_a_late_block(jack_server, noise_file, tmp_path):
    recorded = tmp_path / "played.wav"
    latency, alignment, margin = serve_on_jack(
        jack_server, "--input", noise_file, "--output", recorded, "--duration", 10, "--threads", 1,
        "--latency-margin", 40)  # not auto's 3 periods: a shared CI machine stalls now and then (jackd's own
    # cycles were seen late 64 times in 10 s, the model's p99 at 4x its usual), which no margin for the model covers
    assert latency == alignment + margin and margin % 256 == 0
    played, _ = soundfile.read(recorded, dtype="float32")
    assert len(played) >= 9.5 * RATE
    expected = default_model_output(looped(noise_file, len(played)), latency)
    np.testing.assert_allclose(played, expected, atol=1e-5)  # every sample in place: nothing late, nothing moved


SERVE_TWICE = """
import sys, time
from pathlib import Path
from ravelive.config import ServeConfig
from ravelive.server import Server
for run in range(2):
    server = Server(ServeConfig(model=Path(sys.argv[1]), block=256, input_device="system", output_device="system",
                                input_file=Path(sys.argv[2]), latency_margin_ms=20))
    server.start()
    time.sleep(0.5)
    server.stop()
    print(run, server.status()["audio"], server.realtime.counters.periods)
"""


def test_a_second_server_in_the_same_process_finds_the_jack_devices_again(jack_server, identity_model_path,
                                                                          noise_file):
    # the first one's JACK client terminated PortAudio (which lists the devices): the second must start it again
    result = subprocess.run([sys.executable, "-c", SERVE_TWICE, str(identity_model_path), str(noise_file)],
                            env=jack_server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [line.split() for line in result.stdout.splitlines()]
    assert [run[0] for run in runs] == ["0", "1"] and all(int(run[-1]) > 0 for run in runs), result.stdout
    assert all("JACK" in " ".join(run) for run in runs), result.stdout


def test_on_jack_an_impulse_comes_back_exactly_at_the_reported_latency(jack_server, identity_model_path, tmp_path):
    impulse_at = 3000
    impulse = np.zeros(RATE, dtype=np.float32)
    impulse[impulse_at] = 1.0
    soundfile.write(tmp_path / "impulse.wav", impulse, RATE)
    recorded = tmp_path / "played.wav"
    latency, _, _ = serve_on_jack(jack_server, "--model", identity_model_path, "--block", BLOCK, "--input",
                                  tmp_path / "impulse.wav", "--output", recorded, "--duration", 3,
                                  "--latency-margin", 40)  # room on a shared CI machine, as above
    played, _ = soundfile.read(recorded, dtype="float32")
    assert np.flatnonzero(played)[0] - impulse_at == latency


def test_file_mode_without_a_sound_card_plays_the_input_at_the_reported_latency(identity_model_path, noise_file, tmp_path):
    lines = []
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=2.0,
                             latency_margin_ms=40), lines.append)  # room for a loaded CI machine: 20 ms was seen
    # late in start-up there, which plays the fallback (counted apart from late blocks) and moves samples
    assert lines[0].startswith("serving") and "clock (no sound card)" in lines[0]
    assert lines[-1].startswith("summary:")
    assert status["late_blocks"] == 0 and status["startup_late_blocks"] == 0
    assert status["callback_errors"] == 0 and status["model_errors"] == 0
    lookahead = TruePeakLimiter(1, RATE).delay
    assert status["margin"] == 8 * 256  # 40 ms = 1920 samples, rounded up to whole periods
    assert status["latency"] == status["margin"] + lookahead  # block = period: only the limiter's lookahead waits
    assert status["limiter"] and status["nonfinite_blocks"] == 0
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert len(played) >= 1.5 * RATE
    latency = status["latency"]
    source = looped(noise_file, len(played))[None]
    expected = TruePeakLimiter(1, RATE).process(DCBlocker(1, RATE).process(source))[0, lookahead:]  # as offline
    np.testing.assert_allclose(played[latency:], expected[: len(played) - latency], atol=1e-6)


def test_no_limiter_plays_the_input_bit_exact_and_drops_the_lookahead_from_the_latency(identity_model_path, noise_file,
                                                                                       tmp_path):
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=1.0,
                             latency_margin_ms=40, limiter=False), lambda line: None)  # 40: as above
    assert status["latency"] == status["margin"] == 8 * 256 and not status["limiter"]  # no lookahead to wait for
    assert status["late_blocks"] == 0 and status["startup_late_blocks"] == 0
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    latency = status["latency"]
    np.testing.assert_array_equal(played[latency:], looped(noise_file, len(played))[: len(played) - latency])


def test_sigterm_stops_cleanly_with_a_summary(identity_model_path, noise_file, tmp_path):
    recorded = tmp_path / "out.wav"
    process = subprocess.Popen(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(identity_model_path), "--block", str(BLOCK),
         "--device", "none", "--input", str(noise_file), "--output", str(recorded), "--no-realtime", "--no-osc"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().startswith("serving")
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.startswith("summary:")
    played, _ = soundfile.read(recorded, dtype="float32")  # closed properly: readable to the end
    assert len(played) >= 0.5 * RATE


def test_a_resampling_run_prints_only_its_own_two_lines(sr44100_model_path, noise_file, tmp_path):
    # soxr's binding (nanobind) lists every object still alive at interpreter exit on stderr; the
    # server's frozen reference cycles used to keep two resamplers alive (17 lines of "leaked ...").
    result = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(sr44100_model_path), "--samplerate", str(RATE),
         "--device", "none", "--input", str(noise_file), "--output", str(tmp_path / "out.wav"), "--duration", "1",
         "--no-realtime", "--no-osc"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    serving, summary = result.stdout.splitlines()
    assert re.fullmatch(rf"serving {re.escape(str(sr44100_model_path))} \(forward\) at {RATE} Hz \(resampled from "
                        r"the model's 44100 Hz\) x 1 on clock \(no sound card\); block \d+, period 256; latency \d+ "
                        r"samples = [\d.]+ ms \(alignment \d+ \+ margin \d+\); output: .*", serving)
    assert re.fullmatch(r"summary: \d+s load \d+% compute .* model errors 0 non-finite 0; latency \d+ samples", summary)


class SlowIdentity(NNModel):
    """The identity model, sleeping well past the margin on every 100th call; counts its calls."""

    sleep = 0.15

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def __call__(self, method, x):
        self.calls += 1
        if self.calls % 100 == 0:
            time.sleep(self.sleep)
        return super().__call__(method, x)


def test_a_slow_model_is_counted_late_without_drift_or_lost_input(identity_model_path, noise_file, tmp_path):
    config = file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK,
                         latency_margin_ms=20, fallback="silence", limiter=False)  # bit-exact comparisons
    server = Server(config)
    slow = SlowIdentity.load(identity_model_path)
    server.swap_model(slow)
    server.start()
    time.sleep(3.0)
    server.stop()
    status = server.status()
    assert status["late_blocks"] > 0
    assert status["dropped_frames"] == 0
    assert status["model_errors"] == 0
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    latency = status["latency"]
    expected = looped(noise_file, len(played))
    # Silence where late (the fallback), a 64-sample fade at each edge, and the exact input at the
    # reported latency everywhere else: a drift would make nearly every sample inexact.
    exact = played[latency:] == expected[: len(played) - latency]
    silent = played[latency:] == 0
    assert exact.sum() > len(exact) // 2
    assert (~exact & ~silent).sum() <= 2 * 64 * status["late_blocks"] + RATE // 20  # fades, and the swap's crossfade
    seen = slow.calls * BLOCK
    assert seen >= len(played) - 2 * RATE * SlowIdentity.sleep  # every block reached the model, in order


def test_hot_swap_keeps_the_stream_running(identity_model_path, noise_file, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    identity = shutil.copy(identity_model_path, models / "identity.ts")
    # preloaded: torch's import holds the GIL, and the worker would wait for it (counted late blocks)
    config = file_config(None, noise_file, tmp_path / "out.wav", latency_margin_ms=100,  # room on a shared CI box
                         block=512,  # legal for both models
                         limiter=False,  # the identity's output compared bit for bit
                         osc=OscConfig(port=0, models_dir=models), preload=True)
    server = Server(config)
    server.start()
    time.sleep(1.0)
    finished = threading.Event()
    errors = []
    server.load_model(identity, done=lambda error: (errors.append(error), finished.set()))
    assert finished.wait(30)
    time.sleep(1.0)
    periods = server.realtime.counters.periods
    time.sleep(0.3)
    assert server.realtime.counters.periods > periods  # the clock never stopped
    server.stop()
    status = server.status()
    assert errors == [None]
    assert status["model"] == str(identity)
    # a failure shows the counters and compute times
    assert status["late_blocks"] == 0 and status["callback_errors"] == 0, status
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    expected = looped(noise_file, len(played))
    tail = slice(len(played) - RATE // 4, len(played))  # after the crossfade: the identity model, exact latency
    np.testing.assert_array_equal(played[tail], expected[tail.start - status["latency"] : tail.stop - status["latency"]])


def test_hot_swap_to_a_missing_file_reports_and_keeps_playing(noise_file, tmp_path):
    server = Server(file_config(None, noise_file, None, latency_margin_ms=40))
    server.start()
    finished = threading.Event()
    errors = []
    server.load_model(tmp_path / "missing.ts", done=lambda error: (errors.append(error), finished.set()))
    assert finished.wait(30)
    server.stop()
    assert "missing.ts" in errors[0]
    assert server.status()["model"] == str(DEFAULT_MODEL_PATH)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_no_sound_card_and_no_file_serve_plays_the_demo_and_records_it(tmp_path):
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": "ravelive-no-such-server"}
    result = subprocess.run([sys.executable, "-m", "ravelive", "serve", "--duration", "3", "--no-discovery",
                             "--osc-port", str(free_udp_port())], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("no sound card found: serving a built-in demo loop")
    assert str(tmp_path / "ravelive-demo.wav") in lines[0] and "JACK" in lines[0]
    assert any(line.startswith("OSC on udp://127.0.0.1:") for line in lines), result.stdout
    played, rate = soundfile.read(tmp_path / "ravelive-demo.wav", dtype="float32")
    assert len(played) >= 2 * rate and np.abs(played).max() > 1e-3  # the model played the demo


def test_record_seconds_stops_the_recording_growing_while_the_server_plays_on(identity_model_path, noise_file, tmp_path):
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=1.5,
                             latency_margin_ms=20, record_seconds=0.5), lambda line: None)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert len(played) == RATE // 2 and status["uptime"] >= 1.4


def test_a_server_with_no_sound_card_and_no_file_says_what_to_do():
    with pytest.raises(AudioDeviceError, match="no sound card found.*--input FILE"):
        Server(ServeConfig())


def test_auto_margin_is_p99_plus_the_larger_of_half_of_it_and_the_jitter_in_whole_periods():
    assert margin_from_compute(0.0, RATE, 256) == 256  # one period of jitter headroom, even for no compute
    assert margin_from_compute(0.002, RATE, 256) == 2 * 256  # 96 samples + a period -> two periods
    assert margin_from_compute(0.030, RATE, 256) == 9 * 256  # 1.5 x 1440 = 2160 samples -> nine periods


def test_the_jitter_is_a_time_so_a_long_period_buys_no_second_one_for_a_light_model():
    assert margin_from_compute(0.0016, RATE, 1024) == 1024  # 77 samples + 5.3 ms fit in one period of 21 ms
    assert margin_from_compute(0.010, RATE, 1024) == 1024  # 480 + 256
    assert margin_from_compute(0.025, RATE, 1024) == 2 * 1024  # 1.5 x 1200 = 1800 (with a whole period: 3)
    assert margin_from_compute(0.0014, RATE, 64) == 3 * 64  # a short period is the jitter: 67 + 64 samples


def test_auto_margin_asks_no_more_latency_than_nn_tilde_for_a_model_its_budget_runs():
    block, alignment = 2048, 1871  # a RAVE v2 block at 48 kHz and its alignment (limiter lookahead included)
    ceiling = nn_tilde_ceiling(block, RATE, RATE, alignment, 256)
    assert alignment + ceiling < 2 * block - 64 <= alignment + ceiling + 256  # below nn~, by less than a period
    p99 = 0.035  # 1680 samples: 1.5 x p99 = 10 periods would be more latency than nn~'s
    assert margin_from_compute(p99, RATE, 256) == 10 * 256
    assert margin_from_compute(p99, RATE, 256, ceiling) == ceiling == 8 * 256
    assert margin_from_compute(0.040, RATE, 256, ceiling) == 12 * 256  # no period of slack under it: 1.5 x p99
    assert margin_from_compute(0.010, RATE, 256, ceiling) == 3 * 256  # a light model: 1.5 x p99, under it anyway
    assert nn_tilde_ceiling(block, 44100, RATE, 2300, 256) == (4389 - 1 - 2300) // 256 * 256  # nn~ at 44.1 kHz


def test_systemd_unit_carries_the_serve_options_and_the_limits():
    result = CliRunner().invoke(main, ["systemd-unit", "--user", "pi", "--model", "my model.ts", "--period", "128"])
    assert result.exit_code == 0, result.output
    assert "ExecStart=" in result.output and "serve --model 'my model.ts' --period 128" in result.output
    for line in ("User=pi", "Group=audio", "Restart=on-failure", "LimitRTPRIO=", "LimitMEMLOCK=", "WatchdogSec=",
                 "Type=notify"):
        assert line in result.output


def test_systemd_unit_refuses_an_unknown_serve_option():
    result = CliRunner().invoke(main, ["systemd-unit", "--no-such-option"])
    assert result.exit_code != 0
    assert "no-such-option" in result.output


def test_a_method_written_to_the_controls_hot_swaps_to_it(noise_file):
    server = Server(file_config(None, noise_file, None, latency_margin_ms=40))
    server.start()
    server.controls.set("method", "forward", source="test")  # the running one: nothing to do
    assert not server.realtime.swapping
    server.controls.set("allow_control_output", True, source="test")  # encode's latents are not audio
    server.controls.set("method", "encode", source="test")
    deadline = time.monotonic() + 30
    while server.status()["method"] != "encode" and time.monotonic() < deadline:
        time.sleep(0.05)
    periods = server.realtime.counters.periods
    time.sleep(0.3)
    server.stop()
    assert server.status()["method"] == "encode"
    assert server.realtime.counters.periods > periods
    assert server.status()["callback_errors"] == 0


def test_serve_method_encode_without_the_flag_is_a_one_line_error_naming_it(noise_file):
    result = CliRunner().invoke(main, ["serve", "--method", "encode", "--device", "none", "--input", str(noise_file),
                                       "--no-osc"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "method 'encode' of default.ts outputs 8 channels at 1/512 of the audio rate, not audio" in result.output
    assert "--allow-control-output" in result.output


def test_serve_method_encode_with_the_flag_plays_it(noise_file):
    status = run(file_config(None, noise_file, None, method="encode", allow_control_output=True, duration=0.5,
                             latency_margin_ms=40), lambda line: None)
    assert status["method"] == "encode" and status["callback_errors"] == 0


def sine_file(path, seconds=2.0, frequency=1000.0, amplitude=0.5):
    t = np.arange(int(seconds * RATE))
    soundfile.write(path, (amplitude * np.sin(2 * np.pi * frequency * t / RATE)).astype(np.float32), RATE,
                    subtype="FLOAT")
    return path


def test_the_limiter_keeps_24_db_of_output_gain_under_the_ceiling_and_no_limiter_lets_it_through(identity_model_path,
                                                                                                 tmp_path):
    source = sine_file(tmp_path / "sine.wav")
    for limiter in (True, False):
        recorded = tmp_path / f"limiter_{limiter}.wav"
        server = Server(file_config(identity_model_path, source, recorded, block=BLOCK, latency_margin_ms=20,
                                    limiter=limiter))
        server.controls.set("gain/out", 24.0)  # the top of its range: 0.5 becomes 7.9
        server.start()
        time.sleep(1.5)
        server.stop()
        played, _ = soundfile.read(recorded, dtype="float32")
        assert len(played) > RATE
        if limiter:
            assert server.status()["limiter_gain_db"] < -18  # 0.89 / (7.9 x 1.07 headroom): -19.6 dB
            assert true_peak(played) <= 10 ** (CEILING_DBTP / 20)
            assert true_peak(played) > 10 ** ((CEILING_DBTP - 1) / 20)  # limited, not muted
        else:
            assert np.abs(played).max() > 7.0


def click_file(path, seconds: float, clicks: list[float]):
    """Seeded noise at +-0.25 with one sample of 2 x NAN_TRIGGER at each of `clicks` (seconds)."""
    audio = np.random.default_rng(5).uniform(-0.25, 0.25, int(seconds * RATE)).astype(np.float32)
    for at in clicks:
        audio[int(at * RATE)] = 2 * NAN_TRIGGER
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    return audio


def test_a_nan_model_plays_finite_audio_counts_and_its_output_returns_after_the_reset(nan_model_path, tmp_path):
    source = click_file(tmp_path / "clicks.wav", 1.0, [0.3, 0.7])
    status = run(file_config(nan_model_path, tmp_path / "clicks.wav", tmp_path / "out.wav", block=BLOCK,
                             latency_margin_ms=40, duration=2.0, fallback="silence"), lambda line: None)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert np.isfinite(played).all()
    assert status["nonfinite_blocks"] >= 3 and status["model_errors"] == 0  # one block per click: reset at once
    latency = status["latency"]
    expected = np.tile(source, 3)[: len(played) - latency]
    for click in (0.3, 0.7, 1.3):
        block_start = int(click * RATE) // BLOCK * BLOCK + latency  # the NaN block, played as silence
        gap = played[block_start + 64 : block_start + BLOCK]
        assert np.abs(gap).max() < 0.01  # silence, but for the DC blocker's tail
        back = slice(block_start + BLOCK + 64, block_start + BLOCK + RATE // 10)  # the model again, after the fade
        np.testing.assert_allclose(played[back], expected[back.start - latency : back.stop - latency], atol=0.02)


def test_a_nan_model_without_reset_is_reloaded_and_its_output_returns(nan_model_without_reset_path, tmp_path):
    source = click_file(tmp_path / "click.wav", 4.0, [0.3])
    status = run(file_config(nan_model_without_reset_path, tmp_path / "click.wav", tmp_path / "out.wav", block=BLOCK,
                             latency_margin_ms=40, duration=4.0), lambda line: None)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert np.isfinite(played).all()
    assert status["nonfinite_blocks"] >= 1 and status["model"] == str(nan_model_without_reset_path)
    latency = status["latency"]
    tail = slice(len(played) - RATE // 2, len(played))  # the reloaded model, long after the crossfade
    np.testing.assert_allclose(played[tail], source[tail.start - latency : tail.stop - latency], atol=0.02)


def test_a_restarted_jack_server_is_reopened_under_a_running_server_at_the_same_latency(identity_model_path):
    from jack_server import JackServer

    jack = JackServer(sample_rate=RATE, period=256).start()
    watch = (
        "import json, sys\n"
        "from ravelive.config import ServeConfig\nfrom ravelive.server import Server\n"
        f"server = Server(ServeConfig(model={str(identity_model_path)!r}, block=256, input_device='system',\n"
        "                             output_device='system', realtime=False, latency_margin_ms=20))\n"
        "server.audio.on_state = lambda state, description: print(json.dumps({'event': state}), flush=True)\n"
        "def status():\n"
        "    print(json.dumps(server.status() | {'periods': server.realtime.counters.periods}), flush=True)\n"
        "server.start()\n"
        "status()\n"
        "for line in sys.stdin:\n"  # one status line per line the test sends
        "    status()\n"
        "server.stop()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", watch], env=jack.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def status() -> dict:
        process.stdin.write("\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    try:
        before = json.loads(process.stdout.readline())
        jack.stop()
        assert json.loads(process.stdout.readline()) == {"event": "lost"}  # the hook fires (the lead wires OSC)
        assert json.loads(process.stdout.readline()) == {"event": "reopening"}
        lost = status()
        assert lost["audio_state"] == "reopening" and lost["device_losses"] == 1
        jack.start()  # the same server name
        assert json.loads(process.stdout.readline()) == {"event": "running"}  # within a reopen interval (0.5 s)
        first = status()
        time.sleep(0.5)
        second = status()
        process.stdin.close()
        assert process.wait(30) == 0, process.stderr.read()[-2000:]
    finally:
        process.kill()
        jack.stop()
    assert (second["audio_state"], second["device_losses"], second["device_reopens"]) == ("running", 1, 1)
    assert second["periods"] > first["periods"]  # the audio runs again
    assert second["latency"] == before["latency"] and "JACK" in second["audio"]


def save_preset(directory, model_path, name, values):
    from ravelive.control.model_params import ModelControls
    from ravelive.control.presets import PresetLibrary

    store = ModelControls.from_model(NNModel.load(model_path)).store()
    store.update(values)
    PresetLibrary(directory).save(name, store)


def test_a_preset_is_applied_before_the_audio_starts(identity_model_path, noise_file, tmp_path):
    save_preset(tmp_path / "presets", identity_model_path, "half", {"gain/out": 20 * np.log10(0.5)})
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=1.0,
                             latency_margin_ms=40, preset="half", presets_dir=tmp_path / "presets",
                             limiter=False), lambda line: None)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    latency = status["latency"]
    np.testing.assert_allclose(played[latency:], 0.5 * looped(noise_file, len(played))[: len(played) - latency],
                               atol=1e-6)  # from the very first sample: no ramp from the default gain


def test_preset_last_resumes_the_autosaved_state(identity_model_path, noise_file, tmp_path):
    config = file_config(identity_model_path, noise_file, None, block=BLOCK, latency_margin_ms=20, preset="last",
                         presets_dir=tmp_path / "presets")
    assert Server(config).controls.get("mix") == 1.0  # nothing saved yet: the defaults
    save_preset(tmp_path / "presets", identity_model_path, "last", {"mix": 0.3})
    assert Server(config).controls.get("mix") == 0.3


def test_an_unknown_start_up_preset_fails_in_one_line(identity_model_path, noise_file, tmp_path):
    save_preset(tmp_path / "presets", identity_model_path, "half", {})
    result = CliRunner().invoke(main, ["serve", "--model", str(identity_model_path), "--device", "none", "--input",
                                       str(noise_file), "--no-osc", "--preset", "full",
                                       "--presets-dir", str(tmp_path / "presets")])
    assert result.exit_code == 1
    assert result.output == f"Error: no preset 'full' in {tmp_path / 'presets'}; available: half\n"
