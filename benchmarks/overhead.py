"""Host overhead: StreamEngine versus a bare loop calling the same model on the same blocks.

    .venv/bin/python benchmarks/overhead.py [--model M.ts | --rave-like CHANNELS] [--seconds 60] [--host-block N]

Both sides run the same TorchScript method on the same `block`-sample blocks
of the same noise, with the same thread count, gradients off and denormals
flushed, after a warm-up. The bare loop only calls the method on
preallocated tensors; the engine is fed host blocks of `--host-block`
samples (default: the model block) and does everything it does live:
block assembly, channel/rate adaptation, the checked model call, the latent
transform read.

The machine is shared, so the two sides alternate every second of audio
(both see the same load) and time is CPU time of this process (time spent
preempted by other processes is not counted; wall time is printed too).
Every segment gives a ratio engine / bare; the printed overhead ratio is
their median (robust to the other processes' bursts). Target: <= 1.03.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ravelive.engine.stream import StreamEngine
from ravelive.models.default import DEFAULT_MODEL_PATH
from ravelive.models.nn_model import NNModel

WARMUP_SECONDS = 2.0  # audio pushed through each side before timing
SEGMENT_SECONDS = 0.5  # audio each side processes before the other takes its turn


def build_rave_like(directory: Path, channels: int) -> Path:
    """A RAVE-v2-shaped export (ratio 2048, non-causal cached convs); channels 16 is the tests' rave_like_model."""
    from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder

    config = AutoencoderConfig(strides=(16, 8, 4, 4), channels=channels, causal=False)
    return export_autoencoder(config, directory / "rave_like.ts")


def bare_loop(call, blocks: torch.Tensor) -> None:
    with torch.inference_mode():
        for block in blocks:
            call(block)


def engine_loop(engine: StreamEngine, audio: np.ndarray, host_block: int) -> None:
    for offset in range(0, audio.shape[1], host_block):
        engine.push(audio[:, offset : offset + host_block])


def timed(run) -> np.ndarray:
    """(CPU seconds, wall seconds) of run()."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return np.array([time.process_time() - cpu, time.perf_counter() - wall])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="nn~ model file (default: bundled)")
    parser.add_argument("--rave-like", type=int, metavar="CHANNELS", default=None,
                        help="build and use a RAVE-like ratio-2048 model this wide (16: the tests' fixture)")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per repetition (default 60)")
    parser.add_argument("--host-block", type=int, default=None, help="engine push size (default: the model block)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each side (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    with tempfile.TemporaryDirectory() as scratch:
        path = build_rave_like(Path(scratch), args.rave_like) if args.rave_like else args.model
        model = NNModel.load(path)
    engine = StreamEngine(model)
    block, rate = engine.block, model.sample_rate or 48000
    host_block = args.host_block or block
    frames = int(args.seconds * rate) // block * block
    audio = (0.1 * np.random.default_rng(0).standard_normal((engine.channels, frames))).astype(np.float32)
    blocks = torch.from_numpy(audio).reshape(engine.channels, -1, block).permute(1, 0, 2).contiguous()[:, None]
    call = getattr(model.module, engine.method)

    warmup = int(WARMUP_SECONDS * rate) // block
    bare_loop(call, blocks[:warmup])
    engine_loop(engine, audio[:, : warmup * block], host_block)

    per_segment = max(1, int(SEGMENT_SECONDS * rate) // block)
    pairs = []  # (bare, engine) x (CPU, wall) seconds of one segment
    for repeat in range(args.repeats):
        for segment, first in enumerate(range(0, len(blocks), per_segment)):
            last = min(first + per_segment, len(blocks))
            run_bare = lambda: bare_loop(call, blocks[first:last])  # noqa: E731
            run_engine = lambda: engine_loop(engine, audio[:, first * block : last * block], host_block)  # noqa: E731
            if (repeat + segment) % 2:
                engine_time = timed(run_engine)
                bare_time = timed(run_bare)
            else:
                bare_time = timed(run_bare)
                engine_time = timed(run_engine)
            pairs.append((bare_time, engine_time))

    times = np.array(pairs)  # [segments, side, clock]
    ratios = times[:, 1] / times[:, 0]  # [segments, clock]
    totals = times.sum(axis=0) / args.repeats  # [side, clock] per pass over the signal
    print(f"model {path} method {engine.method}, block {block}, host block {host_block}, {args.threads} thread(s)")
    print(f"{frames / rate:.1f} s of audio x {args.repeats} repetitions per side, alternating every {SEGMENT_SECONDS} s")
    print(f"bare loop  {totals[0, 0]:.3f} s CPU per pass (realtime factor {totals[0, 0] * rate / frames:.4f})")
    print(f"engine     {totals[1, 0]:.3f} s CPU per pass (realtime factor {totals[1, 0] * rate / frames:.4f})")
    print(f"ratio of totals: CPU {totals[1, 0] / totals[0, 0]:.4f}, wall {totals[1, 1] / totals[0, 1]:.4f}")
    print(f"segment ratios: CPU quartiles {_show(np.percentile(ratios[:, 0], [25, 50, 75]))}, "
          f"wall median {np.median(ratios[:, 1]):.4f}")
    print(f"overhead ratio {np.median(ratios[:, 0]):.4f} (median over {len(ratios)} segment pairs, CPU time; target <= 1.03)")


def _show(values: list[float]) -> str:
    return " ".join(f"{value:.4f}" for value in values)


if __name__ == "__main__":
    main()
