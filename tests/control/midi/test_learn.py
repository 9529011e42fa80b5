"""MIDI learn without ports: what the first messages of a control say about it; the file written back."""

import tomllib

import pytest

from ravelive.control.midi.decode import Source
from ravelive.control.midi.learn import LEARN_SECONDS, Learner, write_bindings
from ravelive.control.midi.mapping import ControlMapping, load_map


def learned(store, target, *messages, wait=False):
    learner = Learner(store.spec(target))
    for message in messages:
        mapping = learner.observe(message, 0.0)
        if mapping is not None:
            return mapping
    return learner.expired(LEARN_SECONDS) if wait else None


@pytest.mark.parametrize("messages, source, number, mode", [
    ([(0xB0, 7, 10), (0xB0, 7, 11), (0xB0, 7, 12), (0xB0, 7, 13)], Source.CC, 7, "absolute"),
    ([(0xB0, 1, 64), (0xB0, 33, 0), (0xB0, 1, 64), (0xB0, 33, 9)], Source.CC14, 1, "absolute"),
    ([(0xB0, 33, 0), (0xB0, 1, 64), (0xB0, 33, 9), (0xB0, 1, 64)], Source.CC14, 1, "absolute"),
    ([(0xB0, 99, 2), (0xB0, 98, 44), (0xB0, 6, 10), (0xB0, 38, 0)], Source.NRPN, 300, "absolute"),
    ([(0xB0, 101, 0), (0xB0, 100, 2), (0xB0, 38, 0), (0xB0, 6, 10)], Source.RPN, 2, "absolute"),
    ([(0xB0, 16, 1), (0xB0, 16, 1), (0xB0, 16, 2), (0xB0, 16, 1)], Source.CC, 16, "twos-complement"),
    ([(0xB0, 16, 127), (0xB0, 16, 127), (0xB0, 16, 126), (0xB0, 16, 127)], Source.CC, 16, "twos-complement"),
    ([(0xB0, 16, 65), (0xB0, 16, 65), (0xB0, 16, 66), (0xB0, 16, 65)], Source.CC, 16, "offset-64"),
    ([(0xB0, 16, 63), (0xB0, 16, 63), (0xB0, 16, 63), (0xB0, 16, 63)], Source.CC, 16, "offset-64"),
])
def test_learn_tells_controls_apart(store, messages, source, number, mode):
    mapping = learned(store, "mix", *messages)
    assert (mapping.source, mapping.number, mapping.mode, mapping.channel) == (source, number, mode, 1)
    assert (mapping.minimum, mapping.maximum) == (0.0, 1.0)


def test_a_single_message_is_decided_after_the_window(store):
    assert learned(store, "mix", (0xB5, 9, 100)) is None
    assert learned(store, "mix", (0xB5, 9, 100), wait=True).describe() == "cc 9 on channel 6"


def test_notes_bend_and_pressure_bind_at_once(store):
    assert learned(store, "latent/0/freeze", (0x80, 36, 0), (0x99, 36, 90)).toggle is True
    assert learned(store, "mix", (0xE1, 0, 64)).source is Source.PITCH_BEND
    assert learned(store, "mix", (0xD0, 3)).source is Source.PRESSURE


def test_write_back_keeps_comments_replaces_the_target_and_is_valid(store, tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('# my box\n\n[[map]]  # the first knob\ntarget = "mix"\ncc = 1\n\n[[map]]\ntarget = "gain/out"\n'
                    'cc = 2  # fader\n')
    write_bindings(path, "mix", [ControlMapping("mix", Source.CC14, 5, lsb=37, channel=3)], store.specs)
    text = path.read_text()
    assert "# my box" in text and "cc = 2  # fader" in text and "learned" in text
    document = tomllib.loads(text)
    assert [t["target"] for t in document["map"]] == ["gain/out", "mix"]
    assert document["map"][1] == {"target": "mix", "cc14": 5, "channel": 3}
    assert load_map(path, store.specs).pairs == {5: 37}
    write_bindings(path, "mix", [], store.specs)
    assert [t["target"] for t in tomllib.loads(path.read_text())["map"]] == ["gain/out"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_write_back_creates_a_missing_file(store, tmp_path):
    path = tmp_path / "new.toml"
    write_bindings(path, "mix", [ControlMapping("mix", Source.CC, 1, mode="offset-64")], store.specs)
    assert load_map(path, store.specs).mappings[0].mode == "offset-64"
