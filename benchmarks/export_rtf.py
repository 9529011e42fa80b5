"""Realtime factor of our exported streaming models against RAVE 2.3.1's own exports of the same config.

    .venv/bin/python benchmarks/export_rtf.py [--presets v2,v2_small,raspberry,causal] [--seconds 3]
        [--repeats 3] [--threads 1] [--block-factor 1] [--reference-dir /tmp/ravelive-ref]

What is measured. Ours: `export_rave` of the preset (seeded random weights;
the export is verified as `ravelive export` does). RAVE's: the untrained
`rave export --streaming` files of tools/make_reference_models.py (built
into --reference-dir when missing; RAVE's `v2` and `causal` configs have no
noise generator, ours have one: ours does a little more). Both are loaded
as NNModel and timed by `ravelive bench`'s timer (engine/bench.py: the
StreamEngine `serve` uses, warmed up, gradients off, denormals flushed) on
`forward` at the same block: the models' smallest (their ratio) times
--block-factor. Both run in this one process, so under the same thread
settings: `torch.set_num_threads(--threads)`, OMP_NUM_THREADS and
MKL_NUM_THREADS = --threads and OMP_WAIT_POLICY = PASSIVE, set before torch
is imported.

The realtime factor is compute time / audio time (below 1 keeps up). The
sides alternate (ours, RAVE, ours ...) so both see the same load; each of
--repeats rounds gives a ratio RAVE / ours (above 1: ours is faster), and the
median is printed with the spread (min - max). Target: ratio >= 1.0.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools"
PRESETS = ("v2", "v2_small", "raspberry", "causal")  # each the name of ours and of RAVE's reference file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated, from {', '.join(PRESETS)}")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio timed per side and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (ours, RAVE)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads")
    parser.add_argument("--block-factor", type=int, default=1, help="block = the model's ratio times this")
    parser.add_argument("--reference-dir", type=Path, default=Path("/tmp/ravelive-ref"))
    args = parser.parse_args(argv)
    presets = [name for name in args.presets.split(",") if name]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        parser.error(f"--presets: unknown {unknown}; choose from {', '.join(PRESETS)}")
    if args.threads < 1 or args.repeats < 1 or args.block_factor < 1 or args.seconds <= 0:
        parser.error("--threads, --repeats and --block-factor must be at least 1, --seconds positive")

    threads = str(args.threads)
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OMP_WAIT_POLICY="PASSIVE")
    from ravelive.engine.bench import benchmark
    from ravelive.models.nn_model import NNModel
    from ravelive.models.rave.config import resolve_config
    from ravelive.models.rave.model import export_rave
    from ravelive.models.torchscript import quiet_torchscript

    missing = [name for name in presets if not (args.reference_dir / f"{name}_streaming.ts").exists()]
    if missing:
        sys.path.insert(0, str(TOOLS))
        from make_reference_models import main as make_reference_models

        make_reference_models([str(args.reference_dir), "--only", ",".join(missing)])

    print(f"forward, {args.threads} thread(s), OMP_WAIT_POLICY=PASSIVE, {args.seconds} s of audio per side, "
          f"{args.repeats} rounds; realtime factor (compute / audio time)")
    print(f"{'preset':9s} {'block':>6s} {'ours':>18s} {'RAVE 2.3.1':>18s} {'RAVE/ours':>18s}")
    with tempfile.TemporaryDirectory(prefix="ravelive-export-rtf-") as tmp:
        for preset in presets:
            with quiet_torchscript():
                ours = NNModel.load(export_rave(resolve_config([preset]), Path(tmp) / f"{preset}.ts"))
            theirs = NNModel.load(args.reference_dir / f"{preset}_streaming.ts")
            block = ours.minimum_block()
            if theirs.minimum_block() != block:
                raise SystemExit(f"{preset}: RAVE's smallest block {theirs.minimum_block()} is not ours "
                                 f"({block}): not the same config")
            block *= args.block_factor
            factors: dict[str, list[float]] = {"ours": [], "rave": []}
            for _ in range(args.repeats):
                for side, model in (("ours", ours), ("rave", theirs)):
                    (result,) = benchmark(model, "forward", [block], args.seconds, threads=args.threads)
                    factors[side].append(result.realtime_factor)
            ratios = [r / o for o, r in zip(factors["ours"], factors["rave"])]
            print(f"{preset:9s} {block:6d} {_spread(factors['ours']):>18s} {_spread(factors['rave']):>18s} "
                  f"{_spread(ratios):>18s}", flush=True)
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    sys.exit(main())
