"""Preset morph over real UDP: /ravelive/preset/morph A B chooses, the preset/morph parameter moves."""

import time

import pytest

from ravelive.control.morph import PresetMorph
from ravelive.control.presets import PresetLibrary
from ravelive.errors import ConfigError


def save(store, library, name, **values):
    store.update({key.replace("__", "/"): value for key, value in values.items()})
    library.save(name, store)


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def library(tmp_path):
    return PresetLibrary(tmp_path / "presets")  # the osc_server fixture's presets directory


@pytest.fixture
def two_presets(store, library):
    save(store, library, "a", latent__0__bias=-2.0, mix=0.0, latent__1__freeze=False, gain__out=-6.0)
    save(store, library, "b", latent__0__bias=2.0, mix=1.0, latent__1__freeze=True, gain__out=6.0)
    store.update({"latent/0/bias": 0.0, "mix": 0.5, "preset/morph": 0.0})


def test_morph_moves_every_shared_parameter_between_the_two_presets(client, store, two_presets):
    client.send("/ravelive/preset/morph", "a", "b")
    assert client.expect("/ravelive/done") == ["/ravelive/preset/morph", "a b"]
    assert store.get("latent/0/bias") == -2.0 and store.get("mix") == 0.0  # at once, at the current position 0
    client.send("/ravelive/preset/morph", 0.25)
    assert wait_for(lambda: store.get("latent/0/bias") == pytest.approx(-1.0))
    assert store.get("mix") == pytest.approx(0.25) and store.get("gain/out") == pytest.approx(-3.0)
    assert store.get("latent/1/freeze") is False  # bools switch at 0.5
    client.send("/ravelive/preset/morph", 0.5)
    assert wait_for(lambda: store.get("latent/1/freeze") is True)
    client.send("/ravelive/preset/morph")
    assert client.expect("/ravelive/preset/morph") == [0.5]
    client.send("/ravelive/preset/pair")
    assert client.expect("/ravelive/preset/pair") == ["a", "b"]


def test_a_midi_style_write_to_the_store_drives_the_morph_too(client, store, two_presets):
    client.send("/ravelive/preset/morph", "a", "b")
    client.expect("/ravelive/done")
    store.set("preset/morph", 1.0, source="midi")
    assert wait_for(lambda: store.get("latent/0/bias") == pytest.approx(2.0))


def test_an_unknown_preset_is_refused_in_one_line(client, two_presets):
    client.send("/ravelive/preset/morph", "a", "nope")
    address, message = client.expect("/ravelive/error")
    assert address == "/ravelive/preset/morph"
    assert message.startswith("no preset 'nope' in ") and message.endswith("available: a, b")
    client.send("/ravelive/preset/morph", "a")
    assert "send two preset names (A B)" in client.expect("/ravelive/error")[1]
    client.send("/ravelive/preset/morph", 2.0)
    assert client.expect("/ravelive/error")[1] == "preset/morph: 2.0 is out of range [0, 1]"


def test_method_is_never_morphed_and_a_loaded_preset_leaves_the_position_alone(store, library):
    save(store, library, "a", method="forward", mix=0.0, preset__morph=0.9)
    save(store, library, "b", method="decode", mix=1.0)
    assert "preset/morph" not in library.read("a")
    morph = PresetMorph(library, store)
    morph.choose("a", "b")
    assert "method" not in morph.values_at(1.0) and morph.values_at(1.0)["mix"] == 1.0
    store.set("preset/morph", 0.3)
    library.load("a", store)
    assert store.get("preset/morph") == 0.3


def test_recall_index_counts_presets_in_sorted_order(store, library):
    for name, mix in (("b", 0.2), ("A", 0.1), ("10 c", 0.3)):
        save(store, library, name, mix=mix)
    assert library.names() == ["10 c", "A", "b"]
    library.recall_index(1, store)
    assert store.get("mix") == 0.1
    with pytest.raises(ConfigError, match=r"preset number 3 is not in 0\.\.2 \(0 10 c, 1 A, 2 b in .*\)"):
        library.recall_index(3, store)


@pytest.mark.parametrize(("volts", "gain"), [(-5.0, 1.0), (5.0, 0.25)])
def test_serve_without_osc_morphs_from_a_cv_between_its_start_up_presets(tmp_path, attributes_model_path, volts, gain):
    """--morph A B with --no-osc: a CV mapped to preset/morph moves the model's attribute (the morph is the daemon's)."""
    import numpy as np
    import soundfile

    from ravelive.config import ServeConfig
    from ravelive.control.cv import cv_config
    from ravelive.control.model_params import ModelControls
    from ravelive.models.nn_model import NNModel
    from ravelive.daemon import run

    store = ModelControls.from_model(NNModel.load(attributes_model_path)).store()
    library = PresetLibrary(tmp_path / "presets")
    save(store, library, "loud", attr__gain=1.0)
    save(store, library, "quiet", attr__gain=0.25)
    rate = 48000
    audio = np.random.default_rng(0).uniform(-0.1, 0.1, rate).astype(np.float32)
    cv = np.full(rate, volts / 10.0, dtype=np.float32)  # the default calibration: a sample of 1.0 is 10 V
    soundfile.write(tmp_path / "in.wav", np.stack([audio, cv], axis=1), rate)
    config = ServeConfig(model=attributes_model_path, input_device="none", output_device="none",
                         input_file=tmp_path / "in.wav", output_file=tmp_path / "out.wav", duration=2.0,
                         realtime=False, limiter=False, latency_margin_ms=40, presets_dir=tmp_path / "presets",
                         morph=("loud", "quiet"), cv=cv_config(("2=preset/morph:0:1",)))  # -5 V: A, +5 V: B
    run(config, report=lambda line: None)
    played, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    settled = played[rate // 2 :, 0]  # after the CV smoothing and the latency
    assert np.sqrt(np.mean(settled**2)) == pytest.approx(gain * np.sqrt(np.mean(audio**2)), rel=0.05)


def test_serve_refuses_a_morph_preset_that_does_not_exist_in_one_line(tmp_path, attributes_model_path, noise_file):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ravelive", "serve", "--model", str(attributes_model_path), "--device", "none",
         "--input", str(noise_file), "--duration", "5", "--no-osc", "--no-realtime", "--presets-dir", str(tmp_path),
         "--morph", "a", "b"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ") and "'a'" in result.stderr
    assert "serving" not in result.stdout
