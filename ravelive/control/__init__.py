"""Parameter store, OSC, OSCQuery, presets: everything that controls a running server."""

DEFAULT_OSC_PORT = 7283  # "RAVE" on a phone keypad; no common OSC tool defaults to it (8000, 9000, 57120, 7400 are taken)
