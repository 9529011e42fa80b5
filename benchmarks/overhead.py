"""Host overhead: StreamEngine versus a bare loop calling the same model on the same blocks.

    .venv/bin/python benchmarks/overhead.py [--model M.ts | --rave-v2 | --rave-like CHANNELS]
                                            [--seconds 60] [--host-block N] [--repeats 5]

What is measured. Both sides run the same TorchScript method of the same
model instance on the same `block`-sample blocks of the same noise, one
torch thread, denormals flushed, after a warm-up, each side inside one
`torch.inference_mode()` per segment (what the realtime worker does: it
holds inference mode for its whole life):
- bare loop: `method(block_view)` on views of one prebuilt tensor, the
  output dropped: the least any host can do;
- engine: `engine.push(host_block)` with everything it does live: block
  assembly, the input copy into its tensor pair, the checked NNModel call,
  the latent transform read, the output copy into a new array.
A third line, "bare + copies", is the bare loop plus the input copy and the
output copy that any host (nn~ included) has to make: the engine's own
logic is the gap between it and the engine. A fourth, "output stage", is
what `serve` runs per block: the engine inside engine/output.py's
OutputStage (controls snapshot, gains, wet/dry, NaN guard, DC blocker and
true-peak limiter).

Why a tiny model shows a large ratio: the model call evicts the Python
interpreter's code and data from the CPU caches, so each Python or numpy
call made between two blocks costs 3-10 us instead of 0.1-1 us. The engine
makes a handful per block (~40 us on the 0.5 ms bundled model, ~8%); against
a model of realistic cost (--rave-v2, or a genuine RAVE export with --model)
it is well under 1%.

The machine is shared, so the sides alternate every SEGMENT_SECONDS of audio
(they see the same load) and time is CPU time of this process (time spent
preempted is not counted; wall time is printed too). Each segment gives a
ratio engine / bare; the printed overhead ratio is their median. Target: <= 1.03.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ravelive.control.model_params import ModelControls
from ravelive.engine.output import OutputStage, SafetyCounters
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


def rave_v2_sized() -> Path:
    """The RAVE-v2-sized autoencoder of benchmarks/realtime.py (33 M parameters, ratio 2048), built once and cached."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from realtime import build_model  # the one definition of that shape

    return build_model(48000)


def bare_loop(call, blocks: torch.Tensor) -> None:
    with torch.inference_mode():
        for block in blocks:
            call(block)


def bare_with_copies(call, blocks: torch.Tensor, audio: np.ndarray, inputs: list[torch.Tensor]) -> None:
    """The bare loop plus the copy in (to a preallocated tensor) and out (to a new array) every host makes."""
    size = blocks.shape[-1]
    with torch.inference_mode():
        for index in range(len(blocks)):
            tensor = inputs[index & 1]
            tensor.numpy()[0] = audio[:, index * size : (index + 1) * size]
            call(tensor).numpy()[0].copy()


def engine_loop(engine: StreamEngine, audio: np.ndarray, host_block: int) -> None:
    with torch.inference_mode():
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
    parser.add_argument("--rave-v2", action="store_true", help="use the RAVE-v2-sized autoencoder (realistic cost)")
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
        path = args.model
        if args.rave_v2:
            path = rave_v2_sized()
        elif args.rave_like:
            path = build_rave_like(Path(scratch), args.rave_like)
        model = NNModel.load(path)
    engine = StreamEngine(model)
    block, rate = engine.block, model.sample_rate or 48000
    host_block = args.host_block or block
    frames = int(args.seconds * rate) // block * block
    audio = (0.1 * np.random.default_rng(0).standard_normal((engine.channels, frames))).astype(np.float32)
    blocks = torch.from_numpy(audio).reshape(engine.channels, -1, block).permute(1, 0, 2).contiguous()[:, None]
    inputs = [torch.zeros(1, engine.channels, block) for _ in range(2)]
    call = getattr(model.module, engine.method)
    controls = ModelControls.from_model(model)
    stage = OutputStage(StreamEngine(model), controls.store(), controls, safety=True, fallback="dry",
                        counters=SafetyCounters(), on_nonfinite=lambda burst: None)

    warmup = int(WARMUP_SECONDS * rate) // block
    bare_loop(call, blocks[:warmup])
    engine_loop(engine, audio[:, : warmup * block], host_block)
    engine_loop(stage, audio[:, : warmup * block], host_block)

    per_segment = max(1, int(SEGMENT_SECONDS * rate) // block)
    rows = []  # (bare, engine, bare + copies, output stage) x (CPU, wall) seconds of one segment
    for repeat in range(args.repeats):
        for segment, first in enumerate(range(0, len(blocks), per_segment)):
            last = min(first + per_segment, len(blocks))
            piece = audio[:, first * block : last * block]
            sides = [
                lambda: bare_loop(call, blocks[first:last]),
                lambda: engine_loop(engine, piece, host_block),
                lambda: bare_with_copies(call, blocks[first:last], piece, inputs),
                lambda: engine_loop(stage, piece, host_block),
            ]
            order = np.roll(np.arange(len(sides)), repeat + segment)  # each side takes every place in turn
            row = [None] * len(sides)
            for side in order:
                row[side] = timed(sides[side])
            rows.append(row)

    times = np.array(rows)  # [segments, side, clock]
    ratios = times[:, 1:] / times[:, :1]  # [segments, engine | copies | stage, clock]
    totals = times.sum(axis=0) / args.repeats  # [side, clock] per pass over the signal
    print(f"model {path} method {engine.method}, block {block}, host block {host_block}, {args.threads} thread(s)")
    print(f"{frames / rate:.1f} s of audio x {args.repeats} repetitions per side, alternating every {SEGMENT_SECONDS} s")
    blocks_per_pass = frames / block
    for name, side in (("bare loop", 0), ("bare + copies", 2), ("engine", 1), ("output stage", 3)):
        print(f"{name:14} {totals[side, 0]:.3f} s CPU per pass (realtime factor {totals[side, 0] * rate / frames:.4f}, "
              f"{1e6 * totals[side, 0] / blocks_per_pass:.1f} us per block)")
    print(f"ratio of totals: CPU {totals[1, 0] / totals[0, 0]:.4f}, wall {totals[1, 1] / totals[0, 1]:.4f}")
    print(f"segment ratios: CPU quartiles {_show(np.percentile(ratios[:, 0, 0], [25, 50, 75]))}, "
          f"wall median {np.median(ratios[:, 0, 1]):.4f}")
    print(f"bare + copies / bare: {np.median(ratios[:, 1, 0]):.4f} (median CPU): the copies any host makes")
    print(f"overhead ratio {np.median(ratios[:, 0, 0]):.4f} (median over {len(ratios)} segment pairs, CPU time; "
          f"target <= 1.03)")
    print(f"output stage / bare: {np.median(ratios[:, 2, 0]):.4f} (median CPU): what serve's worker runs per block, "
          f"limiter and DC blocker included")


def _show(values: list[float]) -> str:
    return " ".join(f"{value:.4f}" for value in values)


if __name__ == "__main__":
    main()
