"""MIDI control: ports, the mapping file, decoding, learn and feedback (see docs/midi.md)."""
