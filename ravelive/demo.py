"""What `ravelive serve` does on a machine with no sound card and no files: a built-in demo, recorded.

The README's first command must run the main job anywhere, so with no
device to play on (and none named) the server runs on the clock, loops a
short synthesised phrase (plucked notes over a soft pulse) through the model
and records what it plays to a file it names, with OSC up, until Ctrl-C.
"""

import dataclasses
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

from ravelive.audio import has_output_device
from ravelive.config import ServeConfig

DEMO_RATE = 48000
DEMO_SECONDS = 4.0  # one loop of the phrase
DEMO_INPUT = "ravelive-demo-input.wav"  # the phrase, written to the temporary directory (rewritten each run)
DEMO_RECORDING = "ravelive-demo.wav"  # what plays, written in the working directory (else the temporary one)
DEMO_RECORD_SECONDS = 60.0  # of the recording: a demo left running for days must not fill the disk
_NOTES_HZ = (220.0, 261.63, 329.63, 392.0, 329.63, 261.63, 196.0, 246.94)  # an A minor arpeggio, one per half second


def needs_demo(config: ServeConfig) -> bool:
    """No files given, no device named, and no device to play on."""
    unnamed = all(device in (None, "none") for device in (config.input_device, config.output_device))
    return not config.input_file and not config.output_file and unnamed and not has_output_device()


def with_demo(config: ServeConfig, report: Callable[[str], None]) -> ServeConfig:
    """`config` itself, or (see needs_demo) the same with the demo loop as input and a recording as output."""
    if not needs_demo(config):
        return config
    loop = Path(tempfile.gettempdir()) / DEMO_INPUT
    soundfile.write(loop, demo_phrase(), DEMO_RATE, subtype="FLOAT")
    recording = _writable_directory() / DEMO_RECORDING
    report(f"no sound card found: serving a built-in demo loop on the clock and recording what plays to "
           f"{recording} (the first {DEMO_RECORD_SECONDS:g} s; Ctrl-C stops); for live audio plug in an interface "
           f"or start JACK "
           f"(`ravelive devices` lists what PortAudio sees), or give --input/--output files")
    return dataclasses.replace(config, input_device="none", output_device="none", input_file=loop,
                               output_file=recording, record_seconds=DEMO_RECORD_SECONDS)


def demo_phrase() -> np.ndarray:
    """DEMO_SECONDS of mono float32 at DEMO_RATE: plucked harmonic notes over a soft noise pulse, seeded."""
    frames = int(DEMO_SECONDS * DEMO_RATE)
    phrase = np.zeros(frames, dtype=np.float64)
    note_frames = frames // len(_NOTES_HZ)
    t = np.arange(note_frames) / DEMO_RATE
    for index, frequency in enumerate(_NOTES_HZ):
        harmonics = sum(np.sin(2 * np.pi * k * frequency * t) / k**1.5 for k in range(1, 8))
        phrase[index * note_frames : (index + 1) * note_frames] += 0.25 * harmonics * np.exp(-4.0 * t)
    since_beat = (np.arange(frames) % (DEMO_RATE // 4)) / DEMO_RATE  # a soft noise burst on every quarter second
    pulse = np.random.default_rng(0).standard_normal(frames) * np.exp(-30.0 * since_beat)
    return (phrase + 0.03 * pulse).astype(np.float32)


def _writable_directory() -> Path:
    cwd = Path.cwd()
    try:
        with tempfile.TemporaryFile(dir=cwd):
            return cwd
    except OSError:
        return Path(tempfile.gettempdir())
