"""`ravelive serve` end to end: JACK's dummy driver through PortAudio, file-only mode, signals, hot swap, late blocks."""

import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import soundfile
from click.testing import CliRunner

from ravelive.cli import main
from ravelive.engine.stream import FixedLatency, StreamEngine
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel
from ravelive.server import Server, ServeConfig, margin_from_compute, run

RATE = 48000
BLOCK = 256  # for the identity model (ratio 1: the smallest legal block would be 1)


def looped(path, frames):
    audio, _ = soundfile.read(path, dtype="float32")
    return np.tile(audio, frames // len(audio) + 1)[:frames]


def file_config(model, input_file, output_file, **options):
    return ServeConfig(model=model, input_device="none", output_device="none", input_file=input_file,
                       output_file=output_file, realtime=False, **options)


def default_model_output(audio: np.ndarray, margin: int) -> np.ndarray:
    """What serve plays for `audio` with the default model: warmed up on silence, delayed by latency + margin."""
    model = NNModel.load(DEFAULT_MODEL_PATH)
    StreamEngine(model, sample_rate=RATE).push(np.zeros((1, 100 * 512), dtype=np.float32))  # as the warm-up
    played = FixedLatency(StreamEngine(model, sample_rate=RATE)).process(audio[None])[0]
    return np.concatenate([np.zeros(margin, dtype=np.float32), played])[: len(audio)]


def serve_on_jack(jack_server, *options):
    """`ravelive serve` through PortAudio's JACK host API; returns latency, engine latency and margin."""
    result = subprocess.run([sys.executable, "-m", "ravelive", "serve", "--device", "system", "--no-osc", *map(str, options)],
                            env=jack_server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JACK Audio Connection Kit" in result.stdout
    numbers = re.search(r"latency (\d+) samples = [\d.]+ ms \(engine (\d+) \+ margin (\d+)\)", result.stdout)
    summary = result.stdout.split("summary:")[1]
    assert " late 0 " in summary and "callback errors 0" in summary and "model errors 0" in summary, summary
    return tuple(map(int, numbers.groups()))


def test_serve_on_jack_runs_the_default_model_for_10_s_without_a_late_block(jack_server, noise_file, tmp_path):
    recorded = tmp_path / "played.wav"
    latency, engine_latency, margin = serve_on_jack(
        jack_server, "--input", noise_file, "--output", recorded, "--duration", 10, "--threads", 1)
    assert latency == engine_latency + margin
    played, _ = soundfile.read(recorded, dtype="float32")
    assert len(played) >= 9.5 * RATE
    expected = default_model_output(looped(noise_file, len(played)), margin)
    np.testing.assert_allclose(played, expected, atol=1e-5)  # every sample in place: nothing late, nothing moved


def test_on_jack_an_impulse_comes_back_exactly_at_the_reported_latency(jack_server, identity_model_path, tmp_path):
    impulse_at = 3000
    impulse = np.zeros(RATE, dtype=np.float32)
    impulse[impulse_at] = 1.0
    soundfile.write(tmp_path / "impulse.wav", impulse, RATE)
    recorded = tmp_path / "played.wav"
    latency, _, _ = serve_on_jack(jack_server, "--model", identity_model_path, "--block", BLOCK, "--input",
                                  tmp_path / "impulse.wav", "--output", recorded, "--duration", 3)
    played, _ = soundfile.read(recorded, dtype="float32")
    assert np.flatnonzero(played)[0] - impulse_at == latency


def test_file_mode_without_a_sound_card_plays_the_input_at_the_reported_latency(identity_model_path, noise_file, tmp_path):
    lines = []
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=2.0,
                             latency_margin_ms=20), lines.append)
    assert lines[0].startswith("serving") and "clock (no sound card)" in lines[0]
    assert lines[-1].startswith("summary:")
    assert status["late_blocks"] == 0 and status["callback_errors"] == 0 and status["model_errors"] == 0
    assert status["latency"] == BLOCK - 1 + round(0.020 * RATE)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert len(played) >= 1.5 * RATE
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
    assert re.fullmatch(rf"serving {re.escape(str(sr44100_model_path))} \(forward\) at {RATE} Hz x 1 on clock "
                        r"\(no sound card\); block \d+, period 256; latency \d+ samples = [\d.]+ ms "
                        r"\(engine \d+ \+ margin \d+\)", serving)
    assert re.fullmatch(r"summary: \d+s load \d+% compute .* model errors 0; latency \d+ samples", summary)


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
                         latency_margin_ms=20, fallback="silence")
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
    config = file_config(None, noise_file, tmp_path / "out.wav", latency_margin_ms=40, block=512)  # legal for both
    server = Server(config)
    server.start()
    time.sleep(1.0)
    finished = threading.Event()
    errors = []
    server.load_model(identity_model_path, done=lambda error: (errors.append(error), finished.set()))
    assert finished.wait(30)
    time.sleep(1.0)
    periods = server.realtime.counters.periods
    time.sleep(0.3)
    assert server.realtime.counters.periods > periods  # the clock never stopped
    server.stop()
    status = server.status()
    assert errors == [None]
    assert status["model"] == str(identity_model_path)
    assert status["late_blocks"] == 0 and status["callback_errors"] == 0
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


def test_no_sound_card_and_no_file_says_what_to_do():
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "no sound card found" in result.output and "--input FILE" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_auto_margin_is_p99_plus_the_larger_of_half_of_it_and_one_period_in_whole_periods():
    assert margin_from_compute(0.0, RATE, 256) == 256  # one period of jitter headroom, even for no compute
    assert margin_from_compute(0.002, RATE, 256) == 2 * 256  # 96 samples + a period -> two periods
    assert margin_from_compute(0.030, RATE, 256) == 9 * 256  # 1.5 x 1440 = 2160 samples -> nine periods


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


def save_preset(directory, model_path, name, values):
    from ravelive.control.model_params import ModelControls
    from ravelive.control.presets import PresetLibrary

    store = ModelControls.from_model(NNModel.load(model_path)).store()
    store.update(values)
    PresetLibrary(directory).save(name, store)


def test_a_preset_is_applied_before_the_audio_starts(identity_model_path, noise_file, tmp_path):
    save_preset(tmp_path / "presets", identity_model_path, "half", {"gain/out": 20 * np.log10(0.5)})
    status = run(file_config(identity_model_path, noise_file, tmp_path / "out.wav", block=BLOCK, duration=1.0,
                             latency_margin_ms=20, preset="half", presets_dir=tmp_path / "presets"), lambda line: None)
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
