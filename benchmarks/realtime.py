"""`ravelive serve` on a JACK dummy server with RAVE-v2-sized models: late blocks, latency, CPU overhead.

    .venv/bin/python benchmarks/realtime.py [--seconds 20] [--rounds 5] [--threads 1] [--model FILE.ts]
                                            [--period 256] [--latency-margin MS|auto]

Two runs: a model at the server's own rate (48 kHz), and a 44.1 kHz model
(the rate of every RAVE export) on a 48 kHz server, resampled by serve's
default live converter. Without --model it builds (and caches) a
StreamingAutoencoder shaped like RAVE v2 at each rate: strides 16 (RAVE's
16-band split), 4, 4, 4, 2 = ratio 2048, stage widths 96 x (1, 2, 4, 8, 16);
about 33 M parameters, costing about what a genuine RAVE v2 export costs per
block. --model runs a .ts file instead, at its own rate and at 48 kHz.

Each run starts `jackd -d dummy -r RATE -p PERIOD` and, --rounds times in
turn, runs on it for --seconds each:
- `ravelive serve` on a looped noise file, recording its output;
- the least a live host does (LIVE_HOST): a PortAudio stream on the same
  server whose callback plays silence and, once per model block of audio,
  wakes a thread that calls the model, the same calls as serve's per second.
Then it prints:
- late blocks, xruns and callback errors from serve's summaries;
- the measured latency (seconds 1 to 5 of the last recording, past the
  start-up, checked sample by sample against the model's offline output at
  the reported delay; impossible for a model that draws noise, which the
  check detects) beside nn~'s 2*B - 64 at the model's rate (nn~ never
  resamples), as a ratio of times;
- CPU seconds per audio second of each process (steady state, read from
  /proc): serve's against the live host's of the same round, per round and
  their median (the ratio the issue sets a target for: the rounds alternate
  so that a change in the host's load hits both sides);
- for reference, the model called back to back on the same blocks in this
  process: what pacing the calls by a device costs any live host.
"""

import argparse
import dataclasses
import os
import re
import statistics
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

from ravelive.dsp.dc_blocker import DCBlocker  # noqa: E402
from ravelive.dsp.limiter import TruePeakLimiter  # noqa: E402
from ravelive.dsp.qualities import LIVE_QUALITY  # noqa: E402
from ravelive.engine.stream import FixedLatency, StreamEngine  # noqa: E402
from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder  # noqa: E402
from ravelive.models.nn_model import NNModel  # noqa: E402

RAVE_V2_SHAPE = AutoencoderConfig(strides=(16, 4, 4, 4, 2), stage_channels=(96, 192, 384, 768, 1536), latent_dims=16)
CHECK_SECONDS = 4  # of the recording compared with the offline output (offline costs as much as serving)
CHECK_FROM_SECONDS = 1  # ... from here: past the start-up, where a late block plays the dry input (counted apart)
BARE_BLOCKS = 200  # model calls timed by each bare loop
CACHE = Path.home() / ".cache" / "ravelive-bench"
LIVE_HOST = """
import sys, threading, time
import numpy as np, sounddevice as sd, torch
from ravelive.models.nn_model import NNModel
path, rate, period, block, model_rate, threads, seconds = sys.argv[1], *map(int, sys.argv[2:7]), float(sys.argv[7])
torch.set_num_threads(threads)
torch.set_flush_denormal(True)
model = NNModel.load(path)
x = torch.from_numpy(np.random.default_rng(1).uniform(-0.5, 0.5, (8, 1, 1, block)).astype(np.float32))
played, due = 0, threading.Semaphore(0)
def blocks(frames):  # model blocks of audio in `frames` device frames
    return frames * model_rate // (block * rate)
def callback(indata, outdata, frames, times, status):
    global played
    outdata.fill(0)
    before, played = played, played + frames
    for _ in range(blocks(played) - blocks(before)):
        due.release()
calls = 0
with torch.inference_mode():
    for i in range(4):
        model("forward", x[i])
    with sd.Stream(samplerate=rate, blocksize=period, channels=1, dtype="float32", device=("system", "system"),
                   callback=callback, latency="low"):
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if due.acquire(timeout=1.0):
                model("forward", x[calls % 8])
                calls += 1
print(calls, blocks(played), flush=True)
"""


def build_model(sample_rate: int) -> Path:
    path = CACHE / f"autoencoder-rave-v2-shape-{sample_rate}.ts"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        export_autoencoder(dataclasses.replace(RAVE_V2_SHAPE, sample_rate=sample_rate), path)
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def steady_cpu(process: subprocess.Popen, seconds: float) -> float:
    """CPU seconds per second of `process` over its steady state: from 1 s after now to 1 s before its end."""
    time.sleep(1.0)  # past the stream's start-up
    cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(seconds - 2.0)
    return (cpu_seconds(process.pid) - cpu0) / (time.monotonic() - wall0)


def finish(process: subprocess.Popen, what: str) -> str:
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise SystemExit(f"{what} did not stop within 120 s of its end (see jackd's log)") from None
    if process.returncode:
        raise SystemExit(f"{what} failed: {err[-2000:]}")
    return out


def serve(jack: JackServer, model: Path, noise: Path, recorded: Path, seconds: float, threads: int, period: int,
          margin: str) -> tuple[str, str, float]:
    """(serve's start-up line, its summary output, its CPU seconds per second)."""
    command = [sys.executable, "-m", "ravelive", "serve", "--device", "system", "--model", str(model),
               "--input", str(noise), "--output", str(recorded), "--duration", str(seconds),
               "--threads", str(threads), "--period", str(period), "--latency-margin", margin, "--no-osc"]
    process = subprocess.Popen(command, env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start_line = process.stdout.readline()
    cpu = steady_cpu(process, seconds)
    return start_line, finish(process, "serve"), cpu


def live_host(jack: JackServer, model: Path, block: int, model_rate: int, seconds: float, threads: int,
              period: int) -> float:
    """CPU seconds per second of LIVE_HOST calling `model` on `jack`'s clock."""
    command = [sys.executable, "-c", LIVE_HOST, str(model), str(jack.sample_rate), str(period), str(block),
               str(model_rate), str(threads), str(seconds)]
    process = subprocess.Popen(command, env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.readline()  # ready: loaded, warmed up, the stream started
    cpu = steady_cpu(process, seconds)
    calls, due = map(int, finish(process, "the live host").split())
    if calls < due - 1:
        raise SystemExit(f"the live host made {calls} model calls of the {due} due: it did not keep up, so its CPU "
                         "is no baseline; try --threads 2 or a lighter --model")
    return cpu


def bare_loop(model_path: Path, threads: int, block: int, rate: int) -> float:
    """CPU seconds per audio second of calling the model back to back on consecutive blocks."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    model = NNModel.load(model_path)
    x = torch.from_numpy(
        np.random.default_rng(1).uniform(-0.5, 0.5, (BARE_BLOCKS + 4, 1, 1, block)).astype(np.float32))
    with torch.inference_mode():
        for i in range(4):
            model("forward", x[i])
        started = time.process_time()
        for i in range(4, BARE_BLOCKS + 4):
            model("forward", x[i])
    return (time.process_time() - started) / (BARE_BLOCKS * block / rate)


def offline_output(model_path: Path, audio: np.ndarray, latency: int, rate: int, quality: str) -> np.ndarray:
    """The offline output, through serve's DC blocker and limiter, delayed by `latency` in all."""
    model = NNModel.load(model_path)
    warm = StreamEngine(model, sample_rate=rate, resample_quality=quality)  # as serve's warm-up, on silence
    warm.push(np.zeros((1, 24 * warm.block), dtype=np.float32))
    stream = FixedLatency(StreamEngine(model, sample_rate=rate, resample_quality=quality))
    limiter = TruePeakLimiter(1, rate)
    played = limiter.process(DCBlocker(1, rate).process(stream.process(audio[None])))[0]
    return np.concatenate([np.zeros(latency - stream.latency - limiter.delay, dtype=np.float32), played])[: len(audio)]


def measured_latency(model_path: Path, noise: Path, recorded: Path, latency: int, rate: int, quality: str) -> str:
    played, _ = soundfile.read(recorded, dtype="float32")
    source, _ = soundfile.read(noise, dtype="float32")
    looped = np.tile(source, len(played) // len(source) + 1)[: (CHECK_FROM_SECONDS + CHECK_SECONDS) * rate]
    expected = offline_output(model_path, looped, latency, rate, quality)
    if not np.array_equal(expected, offline_output(model_path, looped, latency, rate, quality)):
        return "not measurable (the model's output is random: it draws noise)"
    checked = slice(CHECK_FROM_SECONDS * rate, len(expected))
    error = float(np.max(np.abs(played[checked] - expected[checked])))
    if error < 1e-4:
        return f"{latency} samples (output == offline output at that delay, max error {error:.1e})"
    return f"NOT {latency} samples: the recording differs from the offline output at that delay by up to {error:.2f}"


def scenario(model_path: Path, rate: int, args) -> None:
    """serve `model_path` on a JACK server at `rate`; print late blocks, latency against nn~'s, CPU against a live host."""
    model = NNModel.load(model_path)
    model_rate = model.sample_rate or rate
    block = StreamEngine(model).block
    params = sum(p.numel() for p in model.module.parameters())
    resampled = f", resampled from the model's {model_rate} Hz" if model_rate != rate else ""
    print(f"\n== {model_path.name}: JACK at {rate} Hz{resampled}; block {block}, {params / 1e6:.1f} M parameters, "
          f"{args.threads} thread(s), period {args.period}")
    serve_cpu, host_cpu, late = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        noise, recorded = Path(tmp) / "noise.wav", Path(tmp) / "played.wav"
        soundfile.write(noise, np.random.default_rng(0).uniform(-0.5, 0.5, 3 * rate).astype(np.float32), rate)
        jack = JackServer(rate, args.period).start()
        try:
            for _ in range(args.rounds):
                host_cpu.append(live_host(jack, model_path, block, model_rate, args.seconds, args.threads,
                                          args.period))
                start_line, out, cpu = serve(jack, model_path, noise, recorded, args.seconds, args.threads,
                                             args.period, args.latency_margin)
                serve_cpu.append(cpu)
                summary = out.split("summary:")[1].strip()
                print("summary:", summary)
                late += int(re.search(r"late (\d+)", summary).group(1))
            driver_xruns, ours_late = jack.driver_xruns(), len(jack.late_cycles("ravelive"))
        finally:
            jack.stop()
        print(start_line.strip())
        latency, alignment, margin = map(int, re.search(
            r"latency (\d+) samples = [\d.]+ ms \(alignment (\d+) \+ margin (\d+)\)", start_line).groups())
        measured = measured_latency(model_path, noise, recorded, latency, rate, LIVE_QUALITY)
    bare = bare_loop(model_path, args.threads, block, model_rate)
    nn_tilde = 2 * block - 64  # at the model's rate: nn~ never resamples (it plays the model pitched instead)
    print(f"late blocks: {late} in {args.rounds} x {args.seconds:.0f} s; jackd: the dummy driver itself woke late "
          f"{driver_xruns} times (every client hears those as xruns), ravelive's client was late {ours_late} times")
    print(f"latency: reported {latency} samples = {1000 * latency / rate:.1f} ms (alignment {alignment} + margin "
          f"{margin} of compute budget); measured {measured}")
    print(f"  nn~ 2*B - 64 = {nn_tilde} samples = {1000 * nn_tilde / model_rate:.1f} ms; "
          f"ravelive / nn~ = {(latency / rate) / (nn_tilde / model_rate):.3f} (in time)")
    ratios = [ours / host for ours, host in zip(serve_cpu, host_cpu)]
    print(f"CPU s per audio s, {args.rounds} rounds in turn: serve {' '.join(f'{c:.4f}' for c in serve_cpu)}; "
          f"live host {' '.join(f'{c:.4f}' for c in host_cpu)}")
    print(f"  serve / live host: {' '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}")
    print(f"  the model back to back in one loop {bare:.4f}: live host / that = "
          f"{statistics.median(host_cpu) / bare:.3f} (what pacing the calls by a device costs any host), "
          f"serve / that = {statistics.median(serve_cpu) / bare:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="of each run of serve and of the live host")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each, in turn (one round's ratio varies "
                        "+-4%% on a shared machine)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--period", type=int, default=256)
    parser.add_argument("--model", type=Path, help="a .ts file (default: the RAVE-v2-shaped models, built here)")
    parser.add_argument("--latency-margin", default="auto", help="passed to serve: milliseconds or auto")
    args = parser.parse_args()
    if args.model:
        scenario(args.model, NNModel.load(args.model).sample_rate or 48000, args)
        scenario(args.model, 48000, args)
    else:
        scenario(build_model(48000), 48000, args)  # at the model's own rate
        scenario(build_model(44100), 48000, args)  # a 44.1 kHz model (as every RAVE export) on a 48 kHz server


if __name__ == "__main__":
    main()
