"""Events to values: scaling, curves, invert, clipping, relative encodings, notes, pickup; values to feedback bytes."""

import pytest

from ravelive.control.midi.binding import Binding, relative_ticks
from ravelive.control.midi.decode import ControlEvent, Source
from ravelive.control.midi.mapping import ControlMapping, PICKUP_HOLD_SECONDS


def binding(store, target="latent/0/bias", source=Source.CC, number=1, **options):
    options.setdefault("minimum", store.spec(target).minimum if store.spec(target).minimum is not None else 0.0)
    options.setdefault("maximum", store.spec(target).maximum if store.spec(target).maximum is not None else 1.0)
    return Binding(ControlMapping(target, source, number, **options), store.spec(target))


def cc(value, number=1, channel=1):
    return ControlEvent(Source.CC, channel, number, value)


def test_absolute_scaling_over_min_max(store):
    b = binding(store, minimum=-2.0, maximum=2.0)
    assert [b.value_for(cc(v), 0.0, 0.0) for v in (0, 127)] == [-2.0, 2.0]
    assert b.value_for(cc(64), 0.0, 0.0) == pytest.approx(-2 + 4 * 64 / 127)


def test_a_mapping_beyond_the_spec_is_clipped_to_it(store):
    b = binding(store, minimum=-10.0, maximum=10.0)  # latent bias is [-5, 5]
    assert b.value_for(cc(0), 0.0, 0.0) == -5.0 and b.value_for(cc(127), 0.0, 0.0) == 5.0


def test_invert_power_and_exponential_curves_and_their_inverse(store):
    inverted = binding(store, "mix", invert=True)
    assert inverted.value_for(cc(127), 0.5, 0.0) == 0.0 and inverted.value_for(cc(0), 0.5, 0.0) == 1.0
    power = binding(store, "mix", curve=2.0)
    assert power.value_at(0.5) == pytest.approx(0.25)
    exponential = binding(store, "latent/0/noise", minimum=0.01, maximum=4.0, curve="exponential")
    assert exponential.value_at(0.5) == pytest.approx((0.01 * 4.0) ** 0.5)
    for b in (inverted, power, exponential):
        for position in (0.0, 0.1, 0.5, 0.9, 1.0):
            assert b.position_of(b.value_at(position)) == pytest.approx(position)


def test_14_bit_resolution(store):
    b = binding(store, "mix", Source.CC14, lsb=33)
    assert b.value_for(ControlEvent(Source.CC14, 1, 1, 8192), 0.0, 0.0) == pytest.approx(8192 / 16383)


@pytest.mark.parametrize("mode, up, down", [("twos-complement", [1, 3], [127, 125]),
                                            ("offset-64", [65, 67], [63, 61]),
                                            ("sign-bit", [1, 3], [65, 67])])
def test_relative_encodings_move_the_current_value(store, mode, up, down):
    assert [relative_ticks(mode, v) for v in up + down] == [1, 3, -1, -3]
    b = binding(store, "mix", mode=mode, step=0.1)
    assert b.value_for(cc(up[1]), 0.5, 0.0) == pytest.approx(0.8)
    assert b.value_for(cc(down[0]), 0.5, 0.0) == pytest.approx(0.4)
    assert b.value_for(cc(up[1]), 0.95, 0.0) == 1.0  # stops at the end


def test_nrpn_increment_and_decrement(store):
    b = binding(store, "mix", Source.NRPN, 300, step=0.25)
    assert b.value_for(ControlEvent(Source.NRPN, 1, 300, 0, 1), 0.5, 0.0) == 0.75
    assert b.value_for(ControlEvent(Source.NRPN, 1, 300, 0, -1), 0.5, 0.0) == 0.25


def test_notes_momentary_toggle_and_velocity(store):
    momentary = binding(store, "bypass", Source.NOTE, 36, minimum=0.0, maximum=1.0)
    on, off = ControlEvent(Source.NOTE, 1, 36, 100), ControlEvent(Source.NOTE, 1, 36, 0)
    assert momentary.value_for(on, False, 0.0) is True and momentary.value_for(off, True, 0.0) is False
    toggle = binding(store, "bypass", Source.NOTE, 36, minimum=0.0, maximum=1.0, toggle=True)
    assert toggle.value_for(on, False, 0.0) is True and toggle.value_for(on, True, 0.0) is False
    assert toggle.value_for(off, True, 0.0) is None
    velocity = binding(store, "mix", Source.NOTE, 36, velocity=True)
    assert velocity.value_for(ControlEvent(Source.NOTE, 1, 36, 127), 0.0, 0.0) == 1.0
    assert velocity.value_for(ControlEvent(Source.NOTE, 1, 36, 64), 0.0, 0.0) == pytest.approx(64 / 127)


def test_channel_matching(store):
    any_channel, second = binding(store), binding(store, channel=2)
    assert any_channel.matches(cc(5, channel=16))
    assert not second.matches(cc(5, channel=1)) and second.matches(cc(5, channel=2))
    assert not any_channel.matches(cc(5, number=2))


def test_pickup_waits_until_the_knob_reaches_the_value(store):
    b = binding(store, "mix", takeover="pickup")
    now = 10.0
    assert b.value_for(cc(0), 0.5, now) is None  # far below 0.5: no jump
    assert b.value_for(cc(30), 0.5, now + 1) is None
    assert b.value_for(cc(62), 0.5, now + 2) == pytest.approx(62 / 127)  # within 3/128
    assert b.value_for(cc(100), 62 / 127, now + 2 + PICKUP_HOLD_SECONDS / 2) == pytest.approx(100 / 127)  # fast move


def test_pickup_accepts_a_knob_that_jumps_across_the_value(store):
    b = binding(store, "mix", takeover="pickup")
    assert b.value_for(cc(20), 0.5, 1.0) is None
    assert b.value_for(cc(110), 0.5, 2.0) == pytest.approx(110 / 127)


def test_immediate_jumps(store):
    assert binding(store, "mix").value_for(cc(0), 0.5, 0.0) == 0.0


def test_feedback_in_each_encoding(store):
    assert binding(store, "mix", channel=3).feedback(1.0) == [[0xB2, 1, 127]]
    pair = binding(store, "mix", Source.CC14, 7, lsb=39).feedback(8192 / 16383)
    assert pair == [[0xB0, 7, 64], [0xB0, 39, 0]]
    assert binding(store, "mix", Source.NRPN, 300).feedback(1.0) == [[0xB0, 99, 2], [0xB0, 98, 44], [0xB0, 6, 127],
                                                                    [0xB0, 38, 127]]
    assert binding(store, "mix", Source.RPN, 1).feedback(0.0)[:2] == [[0xB0, 101, 0], [0xB0, 100, 1]]
    assert binding(store, "bypass", Source.NOTE, 36, minimum=0.0, maximum=1.0).feedback(True) == [[0x90, 36, 127]]
    assert binding(store, "mix", Source.PITCH_BEND, 0).feedback(1.0) == [[0xE0, 127, 127]]
    assert binding(store, "mix", Source.PRESSURE, 0).feedback(0.0) == [[0xD0, 0]]
