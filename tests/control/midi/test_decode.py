"""Byte-level decoding: running status, faults by kind, 14-bit pairs in either order, NRPN/RPN, other sources."""

import collections

import pytest

from ravelive.control.midi.decode import ControlEvent, Decoder, Source, Tokenizer


def tokens(*chunks):
    faults = collections.Counter()
    tokenizer = Tokenizer(faults)
    messages = [message for chunk in chunks for message in tokenizer.feed(chunk)]
    return messages, faults


def decode(decoder, *messages):
    return decoder.decode(messages)


def test_running_status_within_and_across_chunks():
    messages, faults = tokens([0xB0, 7, 10, 7, 11], [7, 12])
    assert messages == [(0xB0, 7, 10), (0xB0, 7, 11), (0xB0, 7, 12)]
    assert sum(faults.values()) == 0


@pytest.mark.parametrize("chunk, kind", [
    ([0xB0, 7], "truncated"),
    ([0x90, 60, 0xB0, 1, 2], "truncated"),
    ([5, 6, 7], "stray_data"),
    ([0xF4], "unknown_status"),
    ([0xFD], "unknown_status"),
    ([0xF0, 1, 2, 3, 0xF7], "sysex"),
    ([0xF0, 1, 2], "sysex"),
])
def test_faults_are_counted_by_kind(chunk, kind):
    _, faults = tokens(chunk)
    assert faults[kind] == 1 and sum(faults.values()) == 1


def test_a_fault_does_not_lose_the_message_after_it():
    messages, faults = tokens([0x90, 60, 0xB0, 1, 2], [0xF0, 1, 0xF7, 0xC0, 5], [0xF8, 0xE0, 0, 64])
    assert messages == [(0xB0, 1, 2), (0xC0, 5), (0xE0, 0, 64)]
    assert faults["truncated"] == 1 and faults["sysex"] == 1


def test_sysex_cancels_running_status():
    _, faults = tokens([0xB0, 7, 1], [0xF0, 1, 0xF7], [7, 2])
    assert faults["stray_data"] == 1


def test_14_bit_cc_msb_first_then_lsb_only_updates():
    decoder = Decoder(pairs={1: 33})
    events = decode(decoder, (0xB0, 1, 64), (0xB0, 33, 5), (0xB0, 33, 6))
    assert [e.value for e in events] == [64 << 7 | 64, 64 << 7 | 5, 64 << 7 | 6]
    assert all(e.source is Source.CC14 and e.number == 1 for e in events)


def test_14_bit_cc_lsb_first_waits_for_its_msb():
    decoder = Decoder(pairs={1: 33})
    events = decode(decoder, (0xB0, 33, 5), (0xB0, 1, 64), (0xB0, 33, 127), (0xB0, 1, 63))
    assert [e.value for e in events] == [64 << 7 | 5, 63 << 7 | 127]


def test_an_unpaired_msb_acts_as_7_bit():
    decoder = Decoder(pairs={7: 39})
    assert [e.value for e in decode(decoder, (0xB0, 7, 0), (0xB0, 7, 127))] == [0, 16383]


def test_pairs_are_per_channel():
    decoder = Decoder(pairs={1: 33})
    events = decode(decoder, (0xB0, 33, 5), (0xB1, 1, 10), (0xB0, 1, 20))
    assert [(e.channel, e.value) for e in events] == [(2, 10 << 7 | 10), (1, 20 << 7 | 5)]


def test_a_cc_that_is_no_pair_stays_7_bit():
    assert decode(Decoder(pairs={1: 33}), (0xB2, 2, 99)) == [ControlEvent(Source.CC, 3, 2, 99)]


@pytest.mark.parametrize("order", [(6, 38), (38, 6)])
def test_nrpn_data_in_either_order(order):
    decoder = Decoder(nrpn=True)
    data = {6: 100, 38: 3}
    events = decode(decoder, (0xB0, 99, 2), (0xB0, 98, 44), *[(0xB0, n, data[n]) for n in order])
    assert events[-1] == ControlEvent(Source.NRPN, 1, 2 << 7 | 44, 100 << 7 | 3)


def test_rpn_increment_decrement_and_null():
    decoder = Decoder(nrpn=True)
    events = decode(decoder, (0xB0, 101, 0), (0xB0, 100, 1), (0xB0, 96, 0), (0xB0, 97, 0),
                    (0xB0, 101, 127), (0xB0, 100, 127), (0xB0, 6, 64))
    assert events == [ControlEvent(Source.RPN, 1, 1, 0, 1), ControlEvent(Source.RPN, 1, 1, 0, -1)]


def test_without_nrpn_the_parameter_ccs_are_plain():
    assert decode(Decoder(), (0xB0, 99, 1)) == [ControlEvent(Source.CC, 1, 99, 1)]


def test_notes_bend_pressure_program():
    events = decode(Decoder(), (0x93, 60, 100), (0x83, 60, 64), (0x93, 61, 0), (0xE0, 0x7F, 0x7F), (0xD1, 9),
                    (0xC5, 3), (0xA0, 60, 1))
    assert events == [
        ControlEvent(Source.NOTE, 4, 60, 100), ControlEvent(Source.NOTE, 4, 60, 0), ControlEvent(Source.NOTE, 4, 61, 0),
        ControlEvent(Source.PITCH_BEND, 1, 0, 16383), ControlEvent(Source.PRESSURE, 2, 0, 9),
        ControlEvent(Source.PROGRAM, 6, 0, 3),
    ]
