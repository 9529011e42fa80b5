"""CV and gate specs, calibration, and the CV control thread's mapping and actions (ravelive.control.cv*)."""

import time
from pathlib import Path

import numpy as np
import pytest

from ravelive.control.cv import (
    Calibration, CvConfig, CvIn, CvOut, GateIn, JackCalibration, calibration_from_table, cv_config, load_calibration,
    parse_cv_in, parse_cv_out, parse_gate_in,
)
from ravelive.control.cv_control import CvControl
from ravelive.control.presets import PresetLibrary
from ravelive.engine.cv_stage import CvSignals
from ravelive.errors import ConfigError

RATE = 48000


@pytest.mark.parametrize("text, expected", [
    ("3=latent/0/bias", CvIn(3, "latent/0/bias")),
    ("3=latent/0/bias:-2:2", CvIn(3, "latent/0/bias", -2.0, 2.0)),
    ("12=gain/out:0:-24", CvIn(12, "gain/out", 0.0, -24.0)),  # MAX < MIN inverts
])
def test_cv_in_reads_channel_parameter_and_optional_range(text, expected):
    assert parse_cv_in(text) == expected


@pytest.mark.parametrize("text, message", [
    ("latent/0/bias", r"expected CH=PARAM\[:MIN:MAX\], e.g. 3=latent/0/bias:-2:2"),
    ("0=mix", r"'0' is not a channel; give the jack's device channel, counted from 1"),
    ("x=mix", r"'x' is not a channel"),
    ("3=mix:1", r"give both MIN and MAX or neither"),
    ("3=mix:a:b", r"MIN and MAX must be numbers"),
    ("3=mix:1:1", r"must be finite and differ"),
])
def test_cv_in_refuses_a_malformed_mapping_with_the_form_and_an_example(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_cv_in(text)


@pytest.mark.parametrize("text, expected", [
    ("4=freeze", GateIn(4, "freeze")),
    ("4=freeze-hold", GateIn(4, "freeze-hold")),
    ("4=preset-next", GateIn(4, "preset-next")),
    ("4=preset-recall:verse", GateIn(4, "preset-recall", "verse")),
    ("4=learn:latent/1/bias", GateIn(4, "learn", "latent/1/bias")),
])
def test_gate_in_reads_the_action_and_its_argument(text, expected):
    assert parse_gate_in(text) == expected


@pytest.mark.parametrize("text, message", [
    ("4=jump", r"'jump' is not an action; use one of preset-next, preset-recall:NAME"),
    ("4=preset-recall", r"preset-recall needs its NAME, e.g. 4=preset-recall:verse"),
    ("4=learn", r"learn needs its PARAM"),
    ("4=freeze:1", r"freeze takes no argument; write 4=freeze"),
])
def test_gate_in_refuses_an_unknown_action_or_a_missing_argument(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_gate_in(text)


@pytest.mark.parametrize("text, expected", [
    ("5=latent/0", CvOut(5, "latent/0", -3.0, 3.0)),
    ("5=latent/2:-1:1", CvOut(5, "latent/2", -1.0, 1.0)),
    ("6=level", CvOut(6, "level", 0.0, 1.0)),
])
def test_cv_out_reads_a_source_with_its_default_range(text, expected):
    assert parse_cv_out(text) == expected


def test_cv_out_refuses_an_unknown_source():
    with pytest.raises(ConfigError, match=r"'latent/x' is not a source; use level or latent/N"):
        parse_cv_out("5=latent/x")


def test_cv_jacks_must_lie_above_the_audio_channels_and_be_used_once():
    config = CvConfig(inputs=(CvIn(3, "mix"),), gates=(GateIn(4, "freeze"),), outputs=(CvOut(6, "level"),))
    assert config.device_channels(2) == 6
    with pytest.raises(ConfigError, match=r"CV channel 3 is one of the model's 3 audio channel\(s\); use a channel above 3"):
        config.device_channels(3)
    twice = CvConfig(inputs=(CvIn(3, "mix"),), gates=(GateIn(3, "freeze"),))
    with pytest.raises(ConfigError, match=r"CV channel 3 is mapped twice"):
        twice.device_channels(1)


def test_no_jack_means_no_cv_config_and_a_calibration_alone_is_refused(tmp_path):
    assert cv_config() is None
    with pytest.raises(ConfigError, match=r"no jack to calibrate; add --cv-in, --gate-in or --cv-out"):
        cv_config(calibration=tmp_path / "rig.toml")


def test_es8_calibration_puts_5_volts_at_half_scale_for_both_ranges():
    bipolar = JackCalibration(10.0, -5.0, 5.0)
    assert bipolar.to_unit(-0.5) == 0.0 and bipolar.to_unit(0.0) == 0.5 and bipolar.to_unit(0.5) == 1.0
    assert bipolar.to_unit(0.9) == 1.0  # +9 V clips to the top
    unipolar = JackCalibration(10.0, 0.0, 10.0)
    assert unipolar.to_unit(0.5) == 0.5 and unipolar.to_unit(-0.1) == 0.0
    assert unipolar.to_sample(1.0) == 1.0 and bipolar.to_sample(0.0) == -0.5


def test_the_cv_table_sets_interface_defaults_and_per_jack_overrides(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("""
[midi]                       # the MIDI map's own tables are left to it
channel = 1

[cv]
volts_full_scale = 5.0       # an interface whose full scale is 5 V
range = "unipolar"
gate_threshold = 1.5
gate_hysteresis = 0.5

[cv.in.3]
range = [-2.5, 2.5]

[cv.out.5]
volts_full_scale = 10.0
range = "bipolar"
""")
    calibration = load_calibration(path)
    assert calibration.default == JackCalibration(5.0, 0.0, 10.0)
    assert calibration.input(3) == JackCalibration(5.0, -2.5, 2.5)
    assert calibration.input(4) == calibration.default
    assert calibration.output(5) == JackCalibration(10.0, -5.0, 5.0)
    assert (calibration.gate_threshold, calibration.gate_hysteresis) == (1.5, 0.5)


@pytest.mark.parametrize("table, message", [
    ({"volts": 10}, r"unknown key 'volts'; the keys are gate_hysteresis, gate_threshold"),
    ({"volts_full_scale": 0}, r"volts_full_scale = 0: give the volts of a full-scale sample, > 0"),
    ({"range": "wide"}, r"range = 'wide': use \"bipolar\" \(-5..5 V\), \"unipolar\" \(0..10 V\) or \[low, high\]"),
    ({"range": [5, -5]}, r"the high voltage must be above the low one"),
    ({"in": {"x": {}}}, r"\[cv.in.x\]: give a channel number from 1 with a table"),
    ({"gate_threshold": "high"}, r"gate_threshold = 'high': give a number"),
])
def test_a_bad_cv_table_is_refused_naming_the_key_and_the_fix(table, message):
    with pytest.raises(ConfigError, match=message):
        calibration_from_table(table)


def test_a_calibration_file_that_is_not_toml_is_refused(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("[cv\n")
    with pytest.raises(ConfigError, match=r"rig.toml: not valid TOML"):
        load_calibration(path)


# ---- the CV control thread's step (poll), on a real store ----


def signals_for(config: CvConfig) -> CvSignals:
    return CvSignals(config, RATE)


def push_volts(signals: CvSignals, channels: int, volts: dict[int, list[float]], n: int = 256) -> None:
    """One push of device input: each listed channel (1-based) holds its voltages in turn, n samples each."""
    for step in range(max(len(v) for v in volts.values())):
        x = np.zeros((channels, n), dtype=np.float32)
        for channel, values in volts.items():
            x[channel - 1] = values[min(step, len(values) - 1)] / 10.0
        signals.analyse(x)


def test_a_cv_input_writes_its_parameter_over_the_mapped_range_only_when_it_moves(store):
    config = CvConfig(inputs=(CvIn(2, "gain/out", -24.0, 0.0), CvIn(3, "latent/0/bias")))
    signals = signals_for(config)
    control = CvControl(signals, store, config)
    changes = []
    store.add_listener(changes.append)
    push_volts(signals, 3, {2: [-5.0], 3: [2.5]})
    control.poll()
    assert store.get("gain/out") == pytest.approx(-24.0)
    assert store.get("latent/0/bias") == pytest.approx(2.5, abs=1e-4)  # +2.5 V of +-5 V onto the bias's [-5, 5]
    assert {change.source for change in changes} == {"cv:2", "cv:3"}
    changes.clear()
    control.poll()  # nothing moved: nothing written
    assert changes == []
    for _ in range(200):  # 1 s of +5 V: the smoothing has settled
        push_volts(signals, 3, {2: [5.0], 3: [2.5]})
    control.poll()
    assert store.get("gain/out") == pytest.approx(0.0, abs=0.05)
    assert [change.name for change in changes] == ["gain/out"]
    assert signals.writes == 3


def test_a_gate_freezes_the_latents_once_per_rising_edge_whatever_the_noise_below_hysteresis(store):
    config = CvConfig(gates=(GateIn(4, "freeze"),))
    signals = signals_for(config)
    control = CvControl(signals, store, config)
    # 0 V, a 5 V gate whose top wobbles down to 1.2 V (above the 1 V release), 0 V, a second gate
    push_volts(signals, 4, {4: [0.0, 5.0, 1.2, 4.0, 1.5, 0.0, 0.9, 5.0]})
    assert signals.rising == [2] and signals.falling == [1]
    control.poll()
    assert store.get("latent/0/freeze") is False  # toggled twice
    push_volts(signals, 4, {4: [0.0, 5.0]})
    control.poll()
    assert all(store.get(f"latent/{d}/freeze") for d in range(4))
    assert signals.actions == 3
    control.poll()  # no new edge: no action
    assert signals.actions == 3


def test_freeze_hold_freezes_while_the_gate_is_high(store):
    config = CvConfig(gates=(GateIn(4, "freeze-hold"),))
    signals = signals_for(config)
    control = CvControl(signals, store, config)
    push_volts(signals, 4, {4: [5.0]})
    control.poll()
    assert store.get("latent/1/freeze") is True
    push_volts(signals, 4, {4: [0.0]})
    control.poll()
    assert store.get("latent/1/freeze") is False


def test_preset_gates_recall_a_named_preset_and_step_through_them(store, tmp_path):
    library = PresetLibrary(tmp_path)
    for name, mix in (("a", 0.25), ("b", 0.5)):
        store.set("mix", mix)
        library.save(name, store)
    store.set("mix", 1.0)
    config = CvConfig(gates=(GateIn(3, "preset-next"), GateIn(4, "preset-recall", "b")))
    signals = signals_for(config)
    control = CvControl(signals, store, config, presets_dir=tmp_path)
    push_volts(signals, 4, {3: [5.0], 4: [0.0]})
    control.poll()
    assert store.get("mix") == 0.25  # the first preset
    push_volts(signals, 4, {3: [0.0, 5.0], 4: [0.0]})
    control.poll()
    assert store.get("mix") == 0.5
    store.set("mix", 1.0)
    push_volts(signals, 4, {3: [5.0], 4: [5.0]})
    control.poll()
    assert store.get("mix") == 0.5


def test_learn_calls_the_hook_it_was_given_once_per_edge(store):
    config = CvConfig(gates=(GateIn(3, "learn", "latent/2/bias"),))
    signals = signals_for(config)
    learned = []
    control = CvControl(signals, store, config, learn=learned.append)
    push_volts(signals, 3, {3: [5.0, 0.0, 5.0]})
    control.poll()
    assert learned == ["latent/2/bias", "latent/2/bias"]


@pytest.mark.parametrize("config, message", [
    (CvConfig(inputs=(CvIn(2, "latent/9/bias"),)), r"--cv-in 2=latent/9/bias: latent/9/bias: no such parameter"),
    (CvConfig(inputs=(CvIn(2, "method"),)), r"a text parameter cannot follow a voltage"),
    (CvConfig(gates=(GateIn(3, "learn", "mix"),)), r"--gate-in 3=learn:mix: MIDI learn is not available"),
    (CvConfig(gates=(GateIn(3, "preset-next"),)), r"--gate-in 3=preset-next: presets need a directory; add --presets-dir"),
])
def test_control_refuses_at_start_what_would_fail_on_stage(store, config, message):
    with pytest.raises(ConfigError, match=message):
        CvControl(signals_for(config), store, config)


def test_the_control_thread_follows_the_worker_when_started(store):
    config = CvConfig(inputs=(CvIn(2, "mix", 0.0, 1.0),), calibration=Calibration(smoothing_ms=0.0))
    signals = signals_for(config)
    control = CvControl(signals, store, config).start()
    try:
        push_volts(signals, 2, {2: [0.0]})  # 0 V: the middle of +-5 V
        for _ in range(100):
            if store.get("mix") == pytest.approx(0.5):
                break
            time.sleep(0.05)
        assert store.get("mix") == pytest.approx(0.5)
    finally:
        control.close()
        signals.close()


def test_the_worked_example_of_docs_midi_md_parses(tmp_path):
    text = (Path(__file__).parents[2] / "docs" / "midi.md").read_text()
    path = tmp_path / "rig.toml"
    path.write_text(text.split("# rig.toml\n", 1)[1].split("```", 1)[0])
    config = cv_config(("3=latent/1/bias:-3:3",), ("4=freeze",), ("5=latent/0:-2:2",), path)
    assert config.device_channels(2) == 5
    assert config.calibration.default == JackCalibration(10.0, -5.0, 5.0)


def test_serve_refuses_a_gate_it_cannot_run_before_the_audio_starts_in_one_line(codec_model_path, noise_file):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(codec_model_path), "--device", "none",
         "--input", str(noise_file), "--duration", "5", "--gate-in", "2=learn:mix", "--no-osc", "--no-realtime"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --gate-in 2=learn:mix: MIDI learn is not available in this server; use another action or start it "
        "with MIDI"]
    assert "serving" not in result.stdout


def test_preset_gates_run_without_osc(codec_model_path, noise_file, tmp_path):
    """The presets directory is the daemon's (--presets-dir, or the default), not OSC's: --no-osc keeps preset gates."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(codec_model_path), "--device", "none",
         "--input", str(noise_file), "--duration", "1", "--gate-in", "2=preset-next", "--no-osc", "--no-realtime",
         "--presets-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("serving")
