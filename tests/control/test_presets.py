"""Presets saved and loaded by name; names never reach outside their directory."""

import json
import time

import pytest

from ravelive.control.model_params import ModelControls
from ravelive.control.named_files import NamedFiles
from ravelive.control.presets import PresetLibrary
from ravelive.errors import ConfigError


@pytest.fixture
def library(tmp_path):
    return PresetLibrary(tmp_path / "presets")


def test_save_then_load_restores_values(library, codec_model):
    store = ModelControls.from_model(codec_model).store()
    store.update({"latent/2/bias": -1.5, "mix": 0.25})
    library.save("dark", store, "codec.ts")
    store.update({"latent/2/bias": 0.0, "mix": 1.0})
    result = library.load("dark", store)
    assert result.skipped == () and store.get("latent/2/bias") == -1.5 and store.get("mix") == 0.25
    assert library.names() == ["dark"]


def test_values_that_do_not_fit_are_skipped_and_named(library, codec_model, tmp_path):
    store = ModelControls.from_model(codec_model).store()
    document = {"format": "ravelive-preset", "version": 1, "model": None,
                "values": {"mix": 0.5, "latent/0/bias": 40.0, "attr/nothing": 1}}
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "odd.json").write_text(json.dumps(document))
    result = library.load("odd", store)
    assert result.applied == 1 and store.get("mix") == 0.5
    assert any("latent/0/bias: 40.0 is out of range" in line for line in result.skipped)
    assert any("attr/nothing: no such parameter" in line for line in result.skipped)


def test_a_file_that_is_not_a_preset_is_refused(library, tmp_path, codec_model):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"junk\.json is not valid JSON"):
        library.load("junk", ModelControls.from_model(codec_model).store())


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "a/b", ".hidden", "..", "x\\y", "", 3])
def test_names_with_paths_are_refused(tmp_path, name):
    files = NamedFiles(tmp_path, ".ts", "model")
    with pytest.raises(ConfigError, match="model name"):
        files.existing(name)


def test_only_present_files_with_the_suffix_are_found(tmp_path):
    (tmp_path / "voice.ts").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    files = NamedFiles(tmp_path, ".ts", "model")
    assert files.names() == ["voice"] and files.existing("voice") == tmp_path / "voice.ts"
    with pytest.raises(ConfigError, match=r"no model 'notes' in .*; available: voice"):
        files.existing("notes")


def test_autosave_writes_last_after_a_change_and_at_close(library, codec_model):
    from ravelive.control.presets import Autosave

    store = ModelControls.from_model(codec_model).store()
    autosave = Autosave(library, store, "codec.ts", delay=0.05).start()
    store.set("mix", 0.4)
    deadline = time.monotonic() + 5
    while "last" not in library.names() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert library.read("last")["mix"] == 0.4
    slow = Autosave(library, store, "codec.ts", delay=60.0).start()
    autosave.close()
    store.set("mix", 0.6)
    slow.close()  # the change is still pending: close writes it
    assert library.read("last")["mix"] == 0.6
