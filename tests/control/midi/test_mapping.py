"""The mapping file: every key read as documented, every malformed kind refused with its file and line."""

import pytest

from ravelive.control.midi.decode import Source
from ravelive.control.midi.mapping import MappingFileError, load_map, parse_map

GOOD = """\
# an 8-knob box
[[map]]
target = "latent/0/bias"
cc = 1
channel = 2
min = -2
max = 2

[[map]]
target = "mix"
cc14 = 7
curve = 2
invert = true
takeover = "pickup"

[[map]]
target = "gain/out"
nrpn = 300
lsb_less = 1
"""


def test_every_key_is_read(store):
    text = """
[[map]]
target = "latent/1/scale"
cc = 20
mode = "relative 2"
step = 0.05
[[map]]
target = "latent/0/freeze"
note = 36
toggle = true
channel = 10
[[map]]
target = "gain/in"
pitchbend = true
[[map]]
target = "mix"
cc14 = 3
lsb = 60
curve = "exponential"
min = 0.1
[program]
channel = 16
"""
    midi_map = parse_map(text, store.specs, "m.toml")
    scale, freeze, gain, mix = midi_map.mappings
    assert (scale.source, scale.number, scale.mode, scale.step) == (Source.CC, 20, "offset-64", 0.05)
    assert scale.channel is None
    assert (scale.minimum, scale.maximum) == (-4.0, 4.0)  # the parameter's own range
    assert (freeze.source, freeze.toggle, freeze.channel) == (Source.NOTE, True, 10)
    assert (freeze.minimum, freeze.maximum) == (0, 1)
    assert gain.source is Source.PITCH_BEND and gain.line == 12
    assert (mix.lsb, mix.curve, mix.minimum) == (60, "exponential", 0.1)
    assert midi_map.pairs == {3: 60} and not midi_map.uses_parameters and midi_map.program_channel == 16


@pytest.mark.parametrize("alias, mode", [("2's comp.", "twos-complement"), ("Relative 1", "twos-complement"),
                                         ("bin offset", "offset-64"), ("relative_3", "sign-bit"),
                                         ("signed bit", "sign-bit"), ("sign-bit", "sign-bit")])
def test_relative_aliases(store, alias, mode):
    midi_map = parse_map(f'[[map]]\ntarget = "mix"\ncc = 1\nmode = "{alias}"\n', store.specs)
    assert midi_map.mappings[0].mode == mode


def test_default_lsb_is_msb_plus_32(store):
    assert parse_map('[[map]]\ntarget = "mix"\ncc14 = 5\n', store.specs).pairs == {5: 37}


BAD = [  # (text, line, words in the message)
    ('[[map]]\ntarget = "latent/9/bias"\ncc = 1\n', 2, "no such parameter"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nchannel = 17\n', 4, "not 1-16"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nchannel = 0\n', 4, "channels count from 1"),
    ('[[map]]\ntarget = "mix"\ncc = 128\n', 3, "0-127"),
    ('[[map]]\ntarget = "mix"\nnote = -1\n', 3, "0-127"),
    ('[[map]]\ntarget = "mix"\nnrpn = 16384\n', 3, "0-16383"),
    ('[[map]]\ntarget = "mix"\nrpn = 16383\n', 3, "null parameter"),
    ('[[map]]\ntarget = "mix"\ncc = 1\ncurv = 2\n', 4, "did you mean 'curve'"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nmode = "relative"\n', 4, "not one of"),
    ('[[map]]\ntarget = "mix"\ncc14 = 1\nmode = "offset-64"\n', 4, "relative encoders send 7-bit"),
    ('[[map]]\ntarget = "mix"\n', 2, "exactly one source"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nnote = 3\n', 4, "exactly one source"),
    ('[[map]]\ncc = 1\n', 1, "needs target"),
    ('[[map]]\ntarget = "method"\ncc = 1\n', 2, "holds text"),
    ('[[map]]\ntarget = "mix"\ncc = 1\ncurve = "s-shape"\n', 4, "not \"linear\""),
    ('[[map]]\ntarget = "mix"\ncc = 1\nmin = 0\nmax = 1\ncurve = "exponential"\n', 6, "of one sign"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nmin = 0.5\nmax = 0.5\n', 5, "would do nothing"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nstep = 0\n', 4, "outside (0, 1]"),
    ('[[map]]\ntarget = "mix"\ncc = 1\ntoggle = true\n', 4, "only goes with note"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nlsb = 33\n', 4, "only goes with cc14"),
    ('[[map]]\ntarget = "mix"\ncc14 = 100\n', 3, "beyond 127"),
    ('[[map]]\ntarget = "mix"\npitchbend = 1\n', 3, "pitchbend = true"),
    ('[[map]]\ntarget = "mix"\ncc = 1\ninvert = "yes"\n', 4, "true or false"),
    ('[[map]]\ntarget = "mix"\ncc = 1\nmin = "low"\n', 4, "finite number"),
    ('[program]\nchannel = "all"\n', 2, "not 1-16"),
    ('[program]\nchanel = 1\n', 2, "unknown key 'chanel'"),
    ('knobs = 8\n', 1, "unknown key 'knobs'"),
    ('[[map]]\ntarget = "mix"\ncc = 1\n\n[[map]\n', 5, "not valid TOML"),
    ('map = 3\n', 1, "must be [[map]] tables"),
]


@pytest.mark.parametrize("text, line, words", BAD)
def test_a_malformed_file_names_file_line_and_fault(store, tmp_path, text, line, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MappingFileError) as raised:
        load_map(path, store.specs)
    assert raised.value.problems[0].startswith(f"{path}:{line}: "), raised.value.problems
    assert words in raised.value.problems[0]


def test_every_fault_is_listed_and_nothing_is_half_applied(store):
    with pytest.raises(MappingFileError, match=r"and 1 more") as raised:
        parse_map(GOOD + '[[map]]\ntarget = "mix"\ncc = 300\n', store.specs, "m.toml")
    assert [p.split(": ")[0] for p in raised.value.problems] == ["m.toml:19", "m.toml:22"]


def test_unreadable_files(store, tmp_path):
    with pytest.raises(MappingFileError, match="cannot be read"):
        load_map(tmp_path / "missing.toml", store.specs)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[[map]]")
    with pytest.raises(MappingFileError, match="not UTF-8"):
        load_map(binary, store.specs)


@pytest.mark.parametrize("name", ["8-knobs.toml", "14-bit-faders.toml"])
def test_the_example_maps_fit_the_bundled_model(name):
    from pathlib import Path

    from ravelive.control.model_params import ModelControls
    from ravelive.models.default import DEFAULT_MODEL_PATH
    from ravelive.models.nn_model import NNModel

    specs = ModelControls.from_model(NNModel.load(DEFAULT_MODEL_PATH)).specs
    path = Path(__file__).resolve().parents[3] / "patches" / "midi" / name
    midi_map = load_map(path, {spec.name: spec for spec in specs})
    assert len(midi_map.mappings) >= 6


def test_model_attributes_are_targets_and_an_unbounded_one_needs_a_range(attributes_model_path):
    from ravelive.control.midi.binding import Binding
    from ravelive.control.midi.decode import ControlEvent
    from ravelive.control.model_params import ModelControls
    from ravelive.models.nn_model import NNModel

    specs = ModelControls.from_model(NNModel.load(attributes_model_path)).store().specs
    with pytest.raises(MappingFileError, match=r"m.toml:2: target 'attr/gain' has no fixed range .*give min and max"):
        parse_map('[[map]]\ntarget = "attr/gain"\ncc = 1\n', specs, "m.toml")
    text = """
[[map]]
target = "attr/gain"
cc = 1
min = 0
max = 4
[[map]]
target = "attr/steps"
cc = 2
min = 1
max = 16
[[map]]
target = "attr/invert"
note = 60
toggle = true
[[map]]
target = "attr/range/1"
cc14 = 3
min = 0
max = 100
"""
    gain, steps, invert, second = (Binding(m, specs[m.target]) for m in parse_map(text, specs).mappings)
    assert gain.value_at(0.5) == 2.0
    assert steps.value_for(ControlEvent(Source.CC, 1, 2, 64), 4, 0.0) == 9  # an int parameter rounds
    assert invert.value_for(ControlEvent(Source.NOTE, 1, 60, 90), False, 0.0) is True
    assert second.value_for(ControlEvent(Source.CC14, 1, 3, 16383), 8, 0.0) == 100
