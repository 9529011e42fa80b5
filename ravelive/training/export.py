"""`ravelive export RUN`: the last checkpoint of a run as a verified nn~ streaming model, with its costs.

`export_rave` builds the streaming model from the checkpoint's config and
weights, saves it, reloads it and checks every method streams to its
offline output; only then are the numbers worth reporting: each method's
latency (its streaming delay, from the file's own description) and the
realtime factor of `forward` at the smallest block (compute time / audio
time on this machine, from `ravelive bench`'s timer).

Only streaming exports: a non-streaming one would need its own verification
path in `export_model` (whose check is "blocks equal one whole call"), and
nn~ plays streaming models anyway.
"""

from dataclasses import dataclass
from pathlib import Path

from ravelive.training.checkpoint import load_checkpoint

BENCH_SECONDS = 2.0  # enough blocks for a stable mean, short enough to wait for


@dataclass(frozen=True)
class MethodLatency:
    name: str
    samples: int
    milliseconds: float


@dataclass(frozen=True)
class ExportReport:
    path: Path
    step: int  # training steps of the exported weights
    latencies: tuple[MethodLatency, ...]
    block: int  # samples per block the realtime factor was measured at
    realtime_factor: float  # compute time / audio time of forward; below 1 keeps up


def export_checkpoint(run: str | Path, out: str | Path) -> tuple[Path, int]:
    """The last checkpoint of `run` as a verified streaming model file `out`; returns (path, its step)."""
    from ravelive.models.rave.model import export_rave

    checkpoint = load_checkpoint(run)
    config, step = checkpoint["config"], checkpoint["step"]
    training = {"step": step, "config": config.train.to_dict()}  # ravelive.json says how the weights came about
    return export_rave(config.model, out, state_dict=checkpoint["model"], training=training), step


def export_run(run: str | Path, out: str | Path, *, bench_seconds: float = BENCH_SECONDS) -> ExportReport:
    """Export the last checkpoint of `run` to `out` (.ts), verified, and measure it."""
    from ravelive.engine.bench import benchmark
    from ravelive.models.nn_model import NNModel

    path, step = export_checkpoint(run, out)
    model = NNModel.load(path)
    latencies = tuple(
        MethodLatency(name, entry["delay"], 1000 * entry["delay"] / model.sample_rate)
        for name, entry in model.metadata["methods"].items()
    )
    block = model.minimum_block()
    (result,) = benchmark(model, "forward", [block], bench_seconds)
    return ExportReport(path, step, latencies, block, result.realtime_factor)
