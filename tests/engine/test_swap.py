"""After every swap, method switch and preset, what clients read is what plays (headless server, real clock)."""

import shutil
import threading
import time

import numpy as np
import soundfile

from ravelive.config import ServeConfig
from ravelive.control.osc import OscConfig
from ravelive.control.presets import PresetLibrary
from ravelive.models.nn_model import NNModel
from ravelive.server import Server

RATE = 48000
BLOCK = 256
WAIT_SECONDS = 30.0


def start_server(model, noise_file, output_file) -> Server:
    server = Server(ServeConfig(model=model, input_device="none", output_device="none", input_file=noise_file,
                                output_file=output_file, realtime=False, block=BLOCK, latency_margin_ms=20,
                                limiter=False))  # outputs compared bit for bit
    server.start()
    return server


def wait_for(condition) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.02)


def settle(server: Server) -> None:
    """Let the stream play on long enough that the last quarter second comes from what plays now."""
    periods = server.realtime.counters.periods
    wait_for(lambda: server.realtime.counters.periods > periods + RATE // 256)


def played_tail(server: Server, output_file, noise_file) -> tuple[np.ndarray, np.ndarray]:
    """The last quarter second played, and the input that belongs there (latency-aligned)."""
    latency = server.status()["latency"]
    server.stop()
    played, _ = soundfile.read(output_file, dtype="float32")
    noise, _ = soundfile.read(noise_file, dtype="float32")
    looped = np.tile(noise, len(played) // len(noise) + 1)
    end = len(played)
    return played[end - RATE // 4 : end], looped[end - RATE // 4 - latency : end - latency]


def loaded(server: Server, path, method=None) -> str | None:
    finished, errors = threading.Event(), []
    server.load_model(path, method, lambda error: (errors.append(error), finished.set()))
    assert finished.wait(WAIT_SECONDS)
    return errors[0]


def test_a_reload_plays_the_attribute_values_clients_set(switchable_model_path, noise_file, tmp_path):
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    server.controls.set("attr/gain", 0.25, source="test")
    assert loaded(server, switchable_model_path) is None  # a fresh file: its own gain is 1
    settle(server)
    assert server.swapper.playing.model.get_attribute("gain") == (0.25,)
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, 0.25 * dry)


def test_a_method_switch_keeps_the_attribute_values(switchable_model_path, noise_file, tmp_path):
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    server.controls.set("attr/gain", 0.5, source="test")
    server.controls.set("method", "negate", source="test")
    wait_for(lambda: server.status()["method"] == "negate")
    settle(server)
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, -0.5 * dry)


def test_a_preset_plays_its_method(switchable_model_path, noise_file, tmp_path):
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    library = PresetLibrary(tmp_path / "presets")
    server.controls.update({"method": "negate", "attr/gain": 0.5}, source="test")
    wait_for(lambda: server.status()["method"] == "negate")
    library.save("negated", server.controls, None)
    server.controls.update({"method": "forward", "attr/gain": 1.0}, source="test")
    wait_for(lambda: server.status()["method"] == "forward")
    library.load("negated", server.controls, source=None)  # written as the server's own change, as OSC does
    wait_for(lambda: server.status()["method"] == "negate")
    settle(server)
    assert server.controls.get("method") == "negate"
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, -0.5 * dry)


def test_a_method_written_during_a_model_load_switches_the_new_model(switchable_model_path, noise_file, tmp_path):
    other = shutil.copy(switchable_model_path, tmp_path / "other.ts")
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    finished = threading.Event()
    server.load_model(other, done=lambda error: finished.set())
    server.controls.set("method", "negate", source="test")  # while `other` loads
    assert finished.wait(WAIT_SECONDS)
    wait_for(lambda: server.status()["method"] == "negate")
    settle(server)
    assert server.status()["model"] == str(other)
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, -dry)


def test_a_model_that_fails_its_warm_up_changes_nothing(switchable_model_path, raising_model_path, noise_file, tmp_path):
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    server.controls.set("attr/gain", 0.5, source="test")
    declared = dict(server.controls.specs)
    error = loaded(server, raising_model_path)
    assert error is not None and "always fails" in error
    assert dict(server.controls.specs) == declared  # still the playing model's parameters
    assert server.controls.get("attr/gain") == 0.5
    assert server.status()["model"] == str(switchable_model_path)
    settle(server)
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, 0.5 * dry)


def test_a_method_that_fails_is_put_back_where_clients_see_it(switchable_model_path, noise_file, tmp_path):
    server = start_server(switchable_model_path, noise_file, tmp_path / "out.wav")
    heard = []
    server.controls.add_listener(heard.append)
    server.controls.set("method", "broken", source="test")
    wait_for(lambda: [change.value for change in heard if change.name == "method"] == ["broken", "forward"])
    settle(server)
    assert server.controls.get("method") == "forward" == server.status()["method"]
    played, dry = played_tail(server, tmp_path / "out.wav", noise_file)
    np.testing.assert_array_equal(played, dry)


def test_swapping_to_a_preloaded_model_loads_nothing(switchable_model_path, noise_file, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    first, second = (shutil.copy(switchable_model_path, models / name) for name in ("first.ts", "second.ts"))
    server = Server(ServeConfig(model=first, input_device="none", output_device="none", input_file=noise_file,
                                realtime=False, block=BLOCK, latency_margin_ms=20,
                                osc=OscConfig(port=0, models_dir=models), preload=True))
    server.start()
    assert server.status()["preloaded_models"] == 1  # the second; the first plays

    def no_loading(path):
        raise AssertionError(f"{path} was loaded again")

    monkeypatch.setattr(NNModel, "load", no_loading)
    for path in (second, first, second):  # the one swapped out rejoins the pool after its crossfade
        assert loaded(server, path) is None
        assert server.status()["model"] == str(path)
    server.stop()
