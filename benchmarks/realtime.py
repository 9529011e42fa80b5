"""`ravelive serve` on a JACK dummy server with a RAVE-v2-sized model: late blocks, latency, CPU overhead.

    .venv/bin/python benchmarks/realtime.py [--seconds 60] [--channels 560] [--threads 1]

Builds (and caches) a ratio-2048 StreamingAutoencoder of about 30 M parameters
(channels 560), starts `jackd -d dummy -r 48000 -p 256`, runs `ravelive serve`
through PortAudio's JACK host API on a looped noise file while recording the
output, then prints:
- late blocks, xruns and callback errors from serve's summary;
- the measured latency (the recording checked sample by sample against the
  model's offline output at the reported delay) beside nn~'s 2*B - 64;
- CPU seconds per audio second of the serve process (steady state, read
  from /proc) beside a bare loop calling the model on the same blocks.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jack_server import JackServer  # noqa: E402 (the same dummy-driver server the tests use)

from ravelive.engine.stream import FixedLatency, StreamEngine  # noqa: E402
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder  # noqa: E402
from ravelive.models.nn_model import NNModel  # noqa: E402

RATE, PERIOD, BLOCK = 48000, 256, 2048
CHECK_SECONDS = 4  # of the recording compared with the offline output (offline costs as much as serving)
CACHE = Path.home() / ".cache" / "ravelive-bench"


def build_model(channels: int) -> Path:
    path = CACHE / f"autoencoder-2048-c{channels}.ts"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        export_autoencoder(AutoencoderConfig(strides=(16, 8, 4, 4), channels=channels, latent_dims=16), path)
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def serve(jack: JackServer, model: Path, noise: Path, recorded: Path, seconds: float, threads: int):
    command = [sys.executable, "-m", "ravelive", "serve", "--device", "system", "--model", str(model),
               "--input", str(noise), "--output", str(recorded), "--duration", str(seconds),
               "--threads", str(threads), "--no-osc"]
    process = subprocess.Popen(command, env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start_line = process.stdout.readline()
    cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(seconds - 1.0)
    cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
    out, err = process.communicate(timeout=120)
    if process.returncode:
        raise SystemExit(f"serve failed: {err[-2000:]}")
    return start_line, out, (cpu1 - cpu0) / (wall1 - wall0)


def bare_loop(model_path: Path, threads: int, blocks: int) -> float:
    """CPU seconds per audio second of calling the model directly on consecutive blocks."""
    torch.set_num_threads(threads)
    model = NNModel.load(model_path)
    x = torch.from_numpy(np.random.default_rng(1).uniform(-0.5, 0.5, (blocks + 4, 1, 1, BLOCK)).astype(np.float32))
    with torch.inference_mode():
        for i in range(4):
            model("forward", x[i])
        started = time.process_time()
        for i in range(4, blocks + 4):
            model("forward", x[i])
    return (time.process_time() - started) / (blocks * BLOCK / RATE)


def offline_output(model_path: Path, audio: np.ndarray, margin: int) -> np.ndarray:
    model = NNModel.load(model_path)
    StreamEngine(model, sample_rate=RATE).push(np.zeros((1, 24 * BLOCK), dtype=np.float32))  # as serve's warm-up
    played = FixedLatency(StreamEngine(model, sample_rate=RATE)).process(audio[None])[0]
    return np.concatenate([np.zeros(margin, dtype=np.float32), played])[: len(audio)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=560, help="autoencoder width (560: ~30 M parameters)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model_path = build_model(args.channels)
    params = sum(p.numel() for p in torch.jit.load(str(model_path)).parameters())
    print(f"model: ratio {BLOCK}, {params / 1e6:.1f} M parameters, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        noise, recorded = Path(tmp) / "noise.wav", Path(tmp) / "played.wav"
        soundfile.write(noise, np.random.default_rng(0).uniform(-0.5, 0.5, 3 * RATE).astype(np.float32), RATE)
        jack = JackServer(RATE, PERIOD).start()
        try:
            start_line, out, serve_cpu = serve(jack, model_path, noise, recorded, args.seconds, args.threads)
        finally:
            jack.stop()
        print(start_line.strip())
        summary = out.split("summary:")[1].strip()
        print("summary:", summary)
        latency, engine_latency, margin = map(int, re.search(
            r"latency (\d+) samples = [\d.]+ ms \(engine (\d+) \+ margin (\d+)\)", start_line).groups())
        played, _ = soundfile.read(recorded, dtype="float32")
        looped = np.tile(soundfile.read(noise, dtype="float32")[0], len(played) // (3 * RATE) + 1)
        check = CHECK_SECONDS * RATE
        expected = offline_output(model_path, looped[:check], margin)
        error = float(np.max(np.abs(played[:check] - expected)))
        measured = latency if error < 1e-4 else None
    bare = bare_loop(model_path, args.threads, blocks=200)
    late = re.search(r"late (\d+)", summary).group(1)
    print(f"late blocks: {late} in {args.seconds:.0f} s")
    print(f"latency: measured {measured} samples ({'output == offline output at that delay, max error %.1e' % error}), "
          f"reported {latency}; nn~ 2*B - 64 = {2 * BLOCK - 64} at B = {BLOCK}")
    print(f"CPU s per audio s: serve {serve_cpu:.3f}, bare model loop {bare:.3f}, ratio {serve_cpu / bare:.3f}")


if __name__ == "__main__":
    main()
