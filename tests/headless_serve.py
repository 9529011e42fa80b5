"""A headless Server for tests: half a second of silence as its input file, no sound card, no realtime scheduling."""

import time

import numpy as np
import soundfile

from ravelive.config import ServeConfig
from ravelive.server import Server

PERIOD_TIMEOUT_S = 30  # a loaded CI machine: how long to wait for the periods asked for


def headless_config(model, tmp_path, rate: int, **options) -> ServeConfig:
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(rate // 2, np.float32), rate)
    return ServeConfig(model=model, input_device="none", output_device="none", input_file=silence, realtime=False,
                       latency_margin_ms=50, threads=1, **options)


def play_collecting_latents(server: Server, periods: int) -> np.ndarray:
    """Start `server`, let it play `periods` more periods, stop it; the latent frames it decoded, [dims, frames]."""
    frames = []
    server.swapper.set_latent_sink(lambda z: frames.append(z.copy()))
    server.start()
    try:
        target = server.realtime.counters.periods + periods
        deadline = time.monotonic() + PERIOD_TIMEOUT_S
        while server.realtime.counters.periods < target and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.stop()
    return np.concatenate(frames, axis=1)
