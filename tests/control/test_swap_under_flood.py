"""A hot swap between two RAVE-v2-sized models (33 M parameters) on JACK, under a 20,000 msg/s OSC flood."""

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from osc_helpers import Client, PrintedLines, free_udp_port
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder
from test_serve_control import FLOOD

RAVE_V2_SHAPE = AutoencoderConfig(strides=(16, 4, 4, 4, 2), stage_channels=(96, 192, 384, 768, 1536), latent_dims=16)
SWAP_SECONDS = 120.0  # load and paced warm-up of a 33 M model on a busy 2-core machine
ISOLATED_LATE_CYCLES = 8  # JACK cycles the host may take from the C callback (see the end of the test)


@pytest.fixture(scope="module")
def rave_v2_sized_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("big_models")
    for name, seed in (("first", 1), ("second", 2)):
        export_autoencoder(RAVE_V2_SHAPE, directory / f"{name}.ts", seed=seed)
    return directory


def test_a_preloaded_33m_model_swaps_in_under_a_flood_with_no_late_block_and_no_xrun(
        jack_server, rave_v2_sized_models, noise_file, tmp_path):
    port = free_udp_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "ravelive", "serve", "--device", "system", "--model", rave_v2_sized_models / "first.ts",
         "--models-dir", rave_v2_sized_models, "--preload", "--osc-port", str(port), "--no-discovery",
         "--threads", "1", "--input", noise_file, "--output", tmp_path / "played.wav",
         "--latency-margin", "80"],  # auto gives ~53 ms; the crossfade and the flood share the 2 cores with it
        env=jack_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = PrintedLines(serve.stdout, "ravelive serve")
        printed.wait_for("OSC on", time.monotonic() + 180)
        time.sleep(2.0)  # past the start-up
        client = Client(("127.0.0.1", port))
        client.send("/ravelive/model/load", "second")  # before the flood: the flood guard may drop it otherwise
        # The flood would come from another machine; here its sender shares the two cores, so it runs at the
        # lowest CPU priority (it still sends its 20,000 messages per second: the count is checked below).
        flood = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", FLOOD, str(port)], stdout=subprocess.PIPE,
                                 text=True)
        assert client.expect("/ravelive/done", timeout=SWAP_SECONDS) == ["/ravelive/model/load", "second"]
        client.close()
        sent = int(flood.communicate(timeout=60)[0])
        time.sleep(2.0)  # the second model plays on its own
        serve.send_signal(signal.SIGTERM)
        summary = printed.wait_for("summary:", time.monotonic() + 60)
        assert serve.wait(60) == 0, serve.stderr.read()[-2000:]
    finally:
        serve.kill()
    late, startup = map(int, re.search(r"late (\d+) \(start-up (\d+)\)", summary).groups())
    xruns = int(re.search(r" xruns (\d+) ", summary).group(1))
    assert sent >= 95000 and late == 0 and "callback errors 0" in summary, (sent, summary)
    # JACK reports every xrun of the server to every client; the dummy driver's own late wake-ups (timer
    # jitter of this machine, with or without clients) are not ours: ravelive must cause none.
    late_cycles = jack_server.late_cycles("ravelive")
    # What this guards against is an audio callback that waits for Python: torch.jit.load holds the GIL for
    # 120-200 ms, 20-40 JACK cycles of 5.3 ms in a row. The callback is C now and does a fixed, tiny amount of
    # work; on a shared virtual machine the host still takes a vCPU away now and then (seen in CI: one unfinished
    # cycle with no steal time recorded in /proc/stat, two in a run with 80 ms of steal, and six late in a full
    # suite run on an otherwise idle machine, with 0 late blocks and 0 late periods on ravelive's side, where
    # the test alone then passed twice with at most 2). Up to eight are the host's; a GIL stall of ours costs
    # 20-40 in a row, at least 2.5 times more.
    assert len(late_cycles) <= ISOLATED_LATE_CYCLES, (summary, jack_server.log())
    assert xruns <= jack_server.driver_xruns() + len(late_cycles), (summary, jack_server.log())
    played, _ = soundfile.read(tmp_path / "played.wav", dtype="float32")
    assert np.isfinite(played).all() and np.abs(played[-48000:]).max() > 0  # the second model plays at the end
