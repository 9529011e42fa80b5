"""The CCs that our JACK client may apply to the output gain itself, in the cycle they arrive.

On JACK, a CC reaches rtmidi's client a cycle after it was sent, and the
control thread decodes it after the audio callback of that cycle has run:
the fader is heard one cycle later than the audio could carry it. For the
one parameter the callback applies as each period plays, `gain/out`, the
control thread therefore compiles its bindings into a table that the JACK
client looks each CC up in (engine/native/rtjack.c): (channel, CC number)
-> the linear gain at each of the 128 values, exactly what the binding
gives the store. The control thread still decodes every message and
writes the store, which sets the same gain; the table only makes it heard
a cycle sooner. (Of a burst of CCs, the JACK client has set the last one's
gain when the store's writes follow one by one: a period that starts
between two of them ramps back towards the earlier value, a step of the
knob, as with the control thread alone.)

Only bindings whose value depends on nothing but the CC's own value are
in it: absolute 7-bit CCs with immediate takeover. A control that is half
of a 14-bit pair or NRPN data entry, or that another kind of `gain/out`
binding (relative, pickup) also reads, is left to the control thread.
"""

from collections.abc import Sequence

from ravelive.control.midi.binding import Binding
from ravelive.control.midi.decode import PARAMETER_CCS, Source
from ravelive.control.midi.mapping import MidiMap
from ravelive.control.model_params import OUTPUT_GAIN
from ravelive.dsp.smoothing import db_to_gain

Cell = tuple[int, int]  # (channel 0-15, CC number)


def gain_cells(bindings: Sequence[Binding], midi_map: MidiMap) -> dict[Cell, tuple[float, ...]]:
    """(channel 0-15, CC number) -> the linear output gain at CC values 0..127, for the direct path."""
    claimed = set(midi_map.pairs) | set(midi_map.pairs.values())
    if midi_map.uses_parameters:
        claimed |= PARAMETER_CCS
    cells: dict[Cell, tuple[float, ...]] = {}
    excluded: set[Cell] = set()
    for binding in bindings:  # in file order: where two bind one control, the store ends with the last one's value
        m = binding.mapping
        if m.target != OUTPUT_GAIN or m.source is not Source.CC or m.number in claimed:
            continue
        channels = range(16) if m.channel is None else (m.channel - 1,)
        if m.relative or m.takeover != "immediate":  # its value depends on more than the CC's value
            excluded.update((channel, m.number) for channel in channels)
            continue
        gains = tuple(db_to_gain(binding.value_at(value / 127)) for value in range(128))
        cells.update(((channel, m.number), gains) for channel in channels)
    return {cell: gains for cell, gains in cells.items() if cell not in excluded}
