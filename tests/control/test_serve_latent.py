"""The latent trajectory over real UDP while `ravelive.daemon.run` serves (file mode, no sound card)."""

import re
import threading

import numpy as np
import soundfile

from osc_helpers import Client
from ravelive.control.osc import OscConfig
from ravelive.engine.stream import StreamEngine
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel
from ravelive.config import ServeConfig
from ravelive.daemon import run

RATE = 48000
SERVE_SECONDS = 3.0
SETTLE_SECONDS = 2  # silence that brings a fresh model to the state the server's warm-up leaves (> receptive field)



def reference_trajectory(x: np.ndarray, loops: int) -> np.ndarray:
    """Every latent frame the bundled model's engine computes on `x` looped, after settling on silence; [frames, dims]."""
    engine = StreamEngine(NNModel.load(DEFAULT_MODEL_PATH))
    frames = []
    engine.push(np.zeros((1, SETTLE_SECONDS * RATE // engine.block * engine.block), dtype=np.float32))
    engine.latent_sink = lambda z: frames.append(z.T.copy())
    engine.push(np.tile(x, loops)[None])
    return np.concatenate(frames)


def serve_in_thread(config: ServeConfig) -> tuple[threading.Thread, int]:
    """`run(config)` on a thread, once it has announced its OSC port: (the thread, the port)."""
    announced = threading.Event()
    port = []

    def report(line: str) -> None:
        found = re.search(r"OSC on udp://[\d.]+:(\d+)", line)
        if found:
            port.append(int(found.group(1)))
            announced.set()

    serving = threading.Thread(target=run, args=(config, report), daemon=True)
    serving.start()
    assert announced.wait(60), "the server never announced its OSC port"
    return serving, port[0]


def test_a_subscriber_gets_every_latent_frame_in_order_while_the_server_runs(tmp_path):
    x = np.random.default_rng(3).uniform(-0.5, 0.5, RATE // 2).astype(np.float32)
    soundfile.write(tmp_path / "in.wav", x, RATE, subtype="FLOAT")
    config = ServeConfig(input_device="none", output_device="none", input_file=tmp_path / "in.wav", threads=1,
                         duration=SERVE_SECONDS, realtime=False, latency_margin_ms=100, osc=OscConfig(port=0),
                         discovery=False)
    serving, port = serve_in_thread(config)
    watcher = Client(("127.0.0.1", port))
    watcher.send("/ravelive/latent/notify", 1)
    watcher.expect("/ravelive/latent/notify")
    received = []
    while True:  # until the server has stopped and nothing more arrives
        alive = serving.is_alive()
        messages = watcher.receive(0.5)
        received += [arguments for address, arguments in messages if address == "/ravelive/latent/out"]
        if not alive and not messages:
            break
    watcher.close()

    reference = reference_trajectory(x, loops=int(SERVE_SECONDS * 2) + 4)  # dims 8, one frame per 512 samples
    got = np.array(received, dtype=np.float32)
    assert got.ndim == 2 and got.shape[1] == reference.shape[1] == 8
    assert len(got) >= RATE / 512  # a second of latent frames at least (93.75 per second)
    start = int(np.argmin(np.abs(reference - got[0]).max(axis=1)))
    np.testing.assert_allclose(got, reference[start : start + len(got)], atol=1e-5)  # consecutive: no gap, no repeat


def test_latent_play_loops_a_sequence_into_decode_while_the_server_runs(codec_model_path, tmp_path):
    x = np.random.default_rng(4).uniform(-0.5, 0.5, RATE // 2).astype(np.float32)
    soundfile.write(tmp_path / "in.wav", x, RATE, subtype="FLOAT")
    latents = tmp_path / "latents"
    latents.mkdir()
    piece = np.random.default_rng(5).standard_normal((4, 40)).astype(np.float32)  # the codec model: 4 latents
    np.save(latents / "piece.npy", piece)
    config = ServeConfig(model=codec_model_path, input_device="none", output_device="none",
                         input_file=tmp_path / "in.wav", threads=1, duration=SERVE_SECONDS, realtime=False,
                         latency_margin_ms=100, osc=OscConfig(port=0, latents_dir=latents), discovery=False)
    serving, port = serve_in_thread(config)
    client = Client(("127.0.0.1", port))
    client.send("/ravelive/latent/notify", 1)
    client.expect("/ravelive/latent/notify")
    client.send("/ravelive/latent/play", "piece")
    assert client.expect("/ravelive/done") == ["/ravelive/latent/play", "piece"]
    received = []
    while serving.is_alive():
        received += [arguments for address, arguments in client.receive(0.5) if address == "/ravelive/latent/out"]
    client.close()
    got = np.array(received, dtype=np.float32)
    first = int(np.flatnonzero(np.abs(got - piece[:, 0]).max(axis=1) == 0)[0])  # the loop's first frame plays
    looped = np.tile(piece, 3).T
    count = min(len(got) - first, len(looped))
    assert count > 2 * piece.shape[1]  # cycled at least twice
    np.testing.assert_array_equal(got[first : first + count], looped[:count])
