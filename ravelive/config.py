"""What `ravelive serve` is asked to do: one frozen dataclass, filled by the CLI (or a test, or a unit file).

Defaults are the ones a new user on a common rig needs: the device's own
sample rate (resampled to the model's) and, on JACK, the server's own period,
the smallest legal model block, a latency margin measured from the model's
warm-up.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from ravelive.control.cv import CvConfig
from ravelive.control.midi.service import MidiConfig
from ravelive.control.osc import OscConfig
from ravelive.dsp.qualities import LIVE_QUALITY
from ravelive.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    model: Path | None = None  # None: the bundled default model
    method: str | None = None  # None: forward (or the model's first method)
    input_device: int | str | None = None  # PortAudio index or name; None: default; "none": no sound card
    output_device: int | str | None = None
    sample_rate: int | None = None  # None: the device's rate (JACK's; else its default), resampled to the model's
    channels: int | None = None  # None: the method's channel count
    period: int | None = None  # frames per audio callback; None: a JACK server's own, else DEFAULT_PERIOD
    block: int | None = None  # model block; None: the smallest legal one
    latency_margin_ms: float | None = None  # None: auto, from the warm-up compute times
    threads: int | None = None  # torch threads; None: default_threads()
    input_file: Path | None = None  # loop this file as the live input
    output_file: Path | None = None  # record what is played
    record_seconds: float | None = None  # with output_file: stop recording after this long; None: record it all
    duration: float | None = None  # seconds; None: until SIGINT/SIGTERM
    stats_interval: float | None = None  # seconds between stats lines; None: none
    realtime: bool = True  # request SCHED_FIFO for the worker and mlockall
    fallback: str = "dry"  # what a late period plays: "dry" (latency-aligned input) or "silence"
    resample_quality: str = LIVE_QUALITY  # when the stream rate differs from the model's; live: ~1.3 ms round trip
    preset: str | None = None  # applied before the audio starts; "last": resume (and keep autosaving) the state
    presets_dir: Path | None = None  # where --preset is read from; None: control.presets.default_presets_dir()
    morph: tuple[str, str] | None = None  # presets the `preset/morph` parameter moves between from the start
    osc: OscConfig | None = None  # OSC control (ravelive.control); None: no network control
    discovery: bool = True  # with osc: OSCQuery over HTTP and mDNS announcements
    limiter: bool = True  # DC blocker + true-peak limiter (-1 dBTP) at the output; False: --no-limiter, neither
    allow_control_output: bool = False  # play methods whose output is not audio (encode, prior); OSC can change it
    midi: MidiConfig | None = None  # MIDI control (ravelive.control.midi); None: no MIDI
    preload: bool = False  # with osc.models_dir: load every model there before the stream starts (instant swaps)
    prior: Path | None = None  # a `ravelive export-prior` file played into decode while prior/play is on
    cv: CvConfig | None = None  # Eurorack CV and gate jacks above the audio channels (ravelive.control.cv); None: none


DEFAULT_PERIOD = 256  # frames per callback where the device takes any: 5.3 ms at 48 kHz


def default_threads() -> int:
    """Torch threads: leave one core to the audio thread, control and the OS; more than 4 rarely helps."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def validate_margin(text: str) -> float | None:
    """`--latency-margin` value: milliseconds, or `auto` (None)."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"--latency-margin {text!r} is neither 'auto' nor a number of milliseconds >= 0; "
                          f"give e.g. 10 or auto")
    return value
