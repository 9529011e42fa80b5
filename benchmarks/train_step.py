"""Training steps per second: ravelive's loop against RAVE 2.3.1's own `training_step`, same config, batch, input.

    .venv/bin/python benchmarks/train_step.py [--presets v2,v2_small] [--phases 1,2] [--batch 2]
        [--length 65536] [--steps 8] [--warmup 2] [--repeats 3] [--threads 2] [--rave-venv /tmp/rave-venv]

What is measured. Each side runs in its own process, started with the same
environment (OMP_NUM_THREADS, MKL_NUM_THREADS = --threads, OMP_WAIT_POLICY =
PASSIVE) and `torch.set_num_threads(--threads)`, on the CPU, on the same
input (`--batch` examples of `--length` samples of seeded noise with a few
partials, built by the same torch code on both sides):
- ours: `ravelive.training.loop.train` itself on those examples, from the
  preset's configs (phase 2: `phase_1_steps=0`), logging and checkpoints
  pushed past the timed steps; the time between the `on_step` callbacks
  after `--warmup` steps;
- RAVE: `rave.RAVE` built by RAVE's own code from its gin configs (v2 gets
  noise.gin, as our v2 preset), its `configure_optimizers`, then its own
  `training_step` called in a loop, with the learning-rate scheduler step
  Lightning would make after each batch (`optimizers()` and `log` are
  given the plain optimisers and a no-op: no Trainer around it). Phase 2:
  `warmed_up = True`. It runs in the reference venv of
  tools/make_reference_models.py (built on first use), with a torchaudio
  shim whose `Spectrogram` is torch.stft (torchaudio has no CPU build for
  torch 2.13; RAVE's spectral distance is the only user in these configs).

A phase-2 step is the same on both sides: one network learns per step, the
discriminator in one step out of `discriminator_every` (ours) or
`update_discriminator_every` (RAVE's), 4 for v2 and 2 for v2_small in both,
and the decoder in the others, so `--steps` must be a multiple of 4 there
and each rate is an average over whole cycles. The second ratio counts
generator (decoder) updates per second, 3/4 (v2) or 1/2 (v2_small) of the
steps on both sides, so it equals the first: a check that both sides train
the same schedule.

The machine may be shared: the sides alternate (ours, RAVE, ours ...), each
of `--repeats` rounds gives a ratio ours / RAVE of steps per second, and the
median is printed with the spread (min - max). Target: ratio >= 1.0.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools"
RAVE_CONFIGS = {"v2": ("v2", "noise"), "v2_small": ("v2_small",), "raspberry": ("raspberry",),
                "causal": ("v2", "noise", "causal")}
RAVE_DISCRIMINATOR_CYCLE = 4  # the largest update_discriminator_every of RAVE's configs (v2)

# `torchaudio.transforms.Spectrogram` as RAVE's MultiScaleSTFT calls it, from torch.stft; appended to
# make_reference_models.TORCHAUDIO_STUB (which makes every other torchaudio use an error)
SPECTROGRAM_SHIM = '''

class Spectrogram(torch.nn.Module):
    """torchaudio.transforms.Spectrogram's defaults and arithmetic (hann window, reflect-padded centre)."""

    def __init__(self, n_fft=400, win_length=None, hop_length=None, pad=0, window_fn=torch.hann_window,
                 power=2.0, normalized=False, wkwargs=None, center=True, pad_mode="reflect", onesided=True):
        super().__init__()
        if pad:
            raise RuntimeError("torchaudio shim: Spectrogram(pad > 0) is not implemented")
        self.n_fft, self.win_length = n_fft, win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.register_buffer("window", window_fn(self.win_length, **(wkwargs or {})))
        self.power, self.normalized, self.center = power, normalized, center
        self.pad_mode, self.onesided = pad_mode or "reflect", onesided

    def forward(self, x):
        shape = x.shape
        spec = torch.stft(x.reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length, self.window,
                          self.center, self.pad_mode, False, self.onesided, return_complex=True)
        spec = spec.reshape(shape[:-1] + spec.shape[-2:])
        if self.normalized in (True, "window"):
            spec = spec / self.window.pow(2).sum().sqrt()
        return spec if self.power is None else spec.abs().pow(self.power)


transforms.Spectrogram = Spectrogram
'''


def example_batch(batch: int, length: int, sample_rate: int = 44100):
    """The benchmark's input, [batch, 1, length]: a few partials and noise, the same on both sides (seeded)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    t = torch.arange(length) / sample_rate
    pitches = 110 * 2 ** (torch.randint(0, 24, (batch, 1, 1), generator=generator) / 12)
    tone = sum(torch.sin(2 * math.pi * k * pitches * t) / k for k in range(1, 6))
    return 0.3 * tone + 0.02 * torch.randn(batch, 1, length, generator=generator)


def time_ours(preset: str, phase: int, batch: int, length: int, steps: int, warmup: int) -> dict:
    """Seconds per step of ravelive's own loop (the gaps between its on_step callbacks after `warmup`)."""
    from ravelive.training.config import build_config
    from ravelive.training.loop import train

    total = warmup + steps
    never = 10**9
    settings = [f"batch_size={batch}", f"example_length={length}", f"steps={total}", "device=cpu",
                f"phase_1_steps={0 if phase == 2 else never}", f"log_interval={never}",
                f"audio_interval={never}", f"checkpoint_interval={never}"]
    config = build_config([preset], settings)
    examples = list(example_batch(batch, length, config.model.sample_rate))
    stamps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ravelive-train-step-") as run:
        result = train(examples, Path(run) / "run", config, on_step=lambda report: stamps.append(time.perf_counter()))
    seconds = (stamps[-1] - stamps[warmup - 1]) / steps
    parameters = {"model": _count(result.model), "discriminator": _count(result.discriminator)}
    every = config.train.discriminator_every
    generator_updates = 1 - 1 / every if phase == 2 and every > 1 else 1.0
    return {"seconds_per_step": seconds, "generator_updates_per_step": generator_updates, "parameters": parameters}


def time_rave(preset: str, phase: int, batch: int, length: int, steps: int, warmup: int) -> dict:
    """Seconds per step of RAVE 2.3.1's own RAVE.training_step (runs in the reference venv)."""
    import gin
    import rave
    import torch

    gin.parse_config_files_and_bindings([f"{name}.gin" for name in RAVE_CONFIGS[preset]], [])
    torch.manual_seed(0)
    model = rave.RAVE(n_channels=1).train()
    generator_config, discriminator_config = model.configure_optimizers()
    optimizers = (generator_config["optimizer"], discriminator_config["optimizer"])
    scheduler = generator_config["lr_scheduler"]["scheduler"]
    model.optimizers = lambda: optimizers  # what Lightning's Trainer would hand it
    model.log = model.log_dict = lambda *args, **kwargs: None
    model.warmed_up = phase == 2
    x = example_batch(batch, length, model.sr)
    for index in range(warmup + steps):
        if index == warmup:
            start = time.perf_counter()
        model.training_step(x.clone(), index)
        scheduler.step()  # RAVE.on_train_batch_end
    seconds = (time.perf_counter() - start) / steps
    parameters = {"model": _count(model.encoder) + _count(model.decoder) + _count(model.pqmf),
                  "discriminator": _count(model.discriminator)}
    generator_updates = 1 - 1 / model.update_discriminator_every if phase == 2 else 1.0
    return {"seconds_per_step": seconds, "generator_updates_per_step": generator_updates, "parameters": parameters}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_side(python: Path, side: str, args: argparse.Namespace, preset: str, phase: int, env: dict) -> dict:
    """One measurement in a fresh process of `python`; returns its JSON line."""
    command = [str(python), __file__, "--side", side, "--preset", preset, "--phase", str(phase),
               "--batch", str(args.batch), "--length", str(args.length), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--threads", str(args.threads)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{side} {preset} phase {phase} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def side_main(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    timer = time_ours if args.side == "ours" else time_rave
    print(json.dumps(timer(args.preset, args.phase, args.batch, args.length, args.steps, args.warmup)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="v2,v2_small", help=f"comma-separated, from {', '.join(RAVE_CONFIGS)}")
    parser.add_argument("--phases", default="1,2", help="1 (reconstruction), 2 (adversarial) or both")
    parser.add_argument("--batch", type=int, default=2, help="examples per step")
    parser.add_argument("--length", type=int, default=65536, help="samples per example (a multiple of 2048)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement (phase 2: a multiple of 4)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (ours, RAVE)")
    parser.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads of both sides")
    parser.add_argument("--rave-venv", type=Path, default=Path("/tmp/rave-venv"))
    parser.add_argument("--side", choices=("ours", "rave"), help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--phase", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        return side_main(args)

    presets = [name for name in args.presets.split(",") if name]
    phases = [int(phase) for phase in args.phases.split(",") if phase]
    unknown = sorted(set(presets) - set(RAVE_CONFIGS))
    if unknown:
        parser.error(f"--presets: unknown {unknown}; choose from {', '.join(RAVE_CONFIGS)}")
    if set(phases) - {1, 2}:
        parser.error(f"--phases {args.phases!r}: expected 1, 2 or 1,2")
    if 2 in phases and args.steps % RAVE_DISCRIMINATOR_CYCLE:
        parser.error(f"--steps {args.steps}: phase 2 needs a multiple of {RAVE_DISCRIMINATOR_CYCLE} (RAVE's "
                     "discriminator/generator cycle); try --steps 8")
    if args.length % 2048 or args.length <= 16 * 1024:
        parser.error(f"--length {args.length}: expected a multiple of 2048 above 16384 (RAVE's 2048-point STFT of "
                     "each of 16 bands needs more than 1024 band samples); try --length 65536")
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")

    sys.path.insert(0, str(TOOLS))
    from make_reference_models import TORCHAUDIO_STUB, ensure_venv

    seconds = ensure_venv(args.rave_venv)
    if seconds:
        print(f"reference venv {args.rave_venv} built in {seconds:.0f} s")
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE"}
    print(f"batch {args.batch} x {args.length} samples, {args.steps} timed steps after {args.warmup}, "
          f"{args.threads} thread(s), OMP_WAIT_POLICY=PASSIVE, {args.repeats} rounds; steps per second")
    print(f"{'preset':9s} {'phase':>5s} {'ours':>16s} {'RAVE 2.3.1':>16s} {'ours/RAVE':>18s} "
          f"{'per generator update':>20s}  parameters ours | RAVE")
    with tempfile.TemporaryDirectory(prefix="ravelive-rave-shim-") as shim:
        (Path(shim) / "torchaudio").mkdir()
        (Path(shim) / "torchaudio" / "__init__.py").write_text(TORCHAUDIO_STUB + SPECTROGRAM_SHIM)
        rave_env = {**env, "PYTHONPATH": shim}
        for preset in presets:
            for phase in phases:
                ours, rave = [], []
                for _ in range(args.repeats):
                    ours.append(run_side(Path(sys.executable), "ours", args, preset, phase, env))
                    rave.append(run_side(args.rave_venv / "bin" / "python", "rave", args, preset, phase, rave_env))
                print(_row(preset, phase, ours, rave), flush=True)
    return 0


def _row(preset: str, phase: int, ours: list[dict], rave: list[dict]) -> str:
    def rates(runs: list[dict]) -> list[float]:
        return [1 / run["seconds_per_step"] for run in runs]

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"

    ratios = [a / b for a, b in zip(rates(ours), rates(rave))]
    updates = [ratio * a["generator_updates_per_step"] / b["generator_updates_per_step"]
               for ratio, a, b in zip(ratios, ours, rave)]

    def sizes(run: dict) -> str:
        return f"{run['parameters']['model'] / 1e6:.1f}+{run['parameters']['discriminator'] / 1e6:.1f} M"

    return (f"{preset:9s} {phase:5d} {spread(rates(ours)):>16s} {spread(rates(rave)):>16s} {spread(ratios):>18s} "
            f"{spread(updates):>20s}  {sizes(ours[0])} | {sizes(rave[0])}")


if __name__ == "__main__":
    sys.exit(main())
