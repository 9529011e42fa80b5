#!/usr/bin/env python3
"""Train the bundled default model (ravelive/models/default.ts) with ravelive's own pipeline, and measure it.

    nice -n 10 .venv/bin/python tools/make_default_model.py                 # ~23 min on 2 shared CPU cores
    .venv/bin/python tools/make_default_model.py --work /tmp/dm --out x.ts  # elsewhere; reruns continue

Four steps, each the library call behind a CLI command, in a work folder
(kept, so an interrupted run continues where it stopped):

1. corpus: CORPUS_SECONDS of `ravelive.training.synthetic` from CORPUS_SEED,
   plus espeak-ng sentences (voices, pitches and speeds drawn from the same
   seed) when espeak-ng is installed;
2. `ravelive preprocess corpus --out data --samplerate 48000 --example-length ...`;
3. `ravelive train data --out run --config causal --set ...` with
   `ravelive.models.default`'s DEFAULT_PRESETS and DEFAULT_SETTINGS
   (`--resume` when the run stopped early);
4. `ravelive export run --out OUT`, then the held-out check: material from
   HELD_OUT_SEED (never trained on) through the trained model and through the
   untrained one (the same config and initial weights), and the spectral
   distance of each reconstruction to its input.

Determinism: the same seeds give the same corpus (numpy; espeak-ng's output
is its version's) and the same training (ravelive train's seeded, bit-for-bit
loop on the CPU with the same torch and thread count).
"""

import argparse
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from ravelive.models.default import CORPUS_SEED, DEFAULT_MODEL_PATH, DEFAULT_PRESETS, DEFAULT_SETTINGS, HELD_OUT_SEED
from ravelive.models.nn_model import NNModel
from ravelive.models.rave.model import export_rave
from ravelive.training.checkpoint import checkpoint_path, load_checkpoint
from ravelive.training.config import build_config
from ravelive.training.evaluate import reconstruction_distance, streamed_reconstruction
from ravelive.training.export import export_run
from ravelive.training.loop import train_run
from ravelive.training.preprocess import PreprocessSettings, preprocess
from ravelive.training.synthetic import SAMPLE_RATE, synthesise

CORPUS_SECONDS = 300  # of synthetic events; 175 s of it make 256 examples of 32768 samples
SPEECH_SENTENCES = 24  # espeak-ng sentences in the training corpus (about 1.5 min)
HELD_OUT_SECONDS = 30  # of synthetic events from HELD_OUT_SEED
HELD_OUT_SENTENCES = 4  # of espeak-ng speech from HELD_OUT_SEED
THREADS = 1  # torch threads: one, as a shared 2-core machine spends two mostly waiting on each other
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "How vexingly quick daft zebras jump.",
    "A neural network listens, squeezes the sound, and sings it back.",
    "Pack my box with five dozen liquor jugs.",
    "Every morning the old bell rang twelve times over the valley.",
    "Sphinx of black quartz, judge my vow.",
    "Bright violins and low drums play together tonight.",
    "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.",
    "Portez ce vieux whisky au juge blond qui fume.",
    "El veloz murciélago hindú comía feliz cardillo y kiwi.",
    "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama alleluja.",
)
VOICES = ("en-us", "en-gb", "en-gb-scotland", "de", "fr-fr", "es", "it")
VARIANTS = ("", "+m1", "+m3", "+f1", "+f2", "+f4", "+croak", "+klatt")


def speak(count: int, seed: int, folder: Path) -> list[Path]:
    """`count` espeak-ng sentences as 48 kHz wav files (voice, variant, pitch, speed from `seed`); [] without it."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return []
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        text = SENTENCES[rng.integers(len(SENTENCES))]
        voice = VOICES[rng.integers(len(VOICES))] + VARIANTS[rng.integers(len(VARIANTS))]
        pitch, speed = int(rng.integers(10, 90)), int(rng.integers(120, 220))
        path = folder / f"speech-{seed}-{index:02d}.wav"
        subprocess.run([espeak, "-w", str(path), "-v", voice, "-p", str(pitch), "-s", str(speed), text],
                       check=True, capture_output=True)
        paths.append(path)
    return paths


def speech_signal(paths: list[Path]) -> np.ndarray:
    """The wav files read, resampled to SAMPLE_RATE and joined with 0.2 s of silence (empty without files)."""
    import soxr

    parts = []
    for path in paths:
        audio, rate = soundfile.read(path, dtype="float32")
        parts += [soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32), np.zeros(SAMPLE_RATE // 5, np.float32)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def make_corpus(folder: Path) -> str:
    """The training corpus into `folder` (once); returns what it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    synth = folder / f"synthetic-{CORPUS_SEED}.wav"
    if not synth.exists():
        soundfile.write(synth, synthesise(CORPUS_SECONDS, CORPUS_SEED), SAMPLE_RATE, subtype="FLOAT")
    speech = sorted(folder.glob("speech-*.wav")) or speak(SPEECH_SENTENCES, CORPUS_SEED, folder)
    seconds = sum(soundfile.info(path).duration for path in speech)
    return f"{CORPUS_SECONDS} s synthetic + {len(speech)} espeak-ng sentences ({seconds:.0f} s)"


def held_out() -> dict[str, np.ndarray]:
    """Material from HELD_OUT_SEED, never trained on: synthetic events, and speech when espeak-ng is there."""
    material = {"synthetic": synthesise(HELD_OUT_SECONDS, HELD_OUT_SEED)}
    with tempfile.TemporaryDirectory() as scratch:
        speech = speech_signal(speak(HELD_OUT_SENTENCES, HELD_OUT_SEED, Path(scratch)))
    if len(speech):
        material["speech"] = speech
    return material


def train_to_the_end(data: Path, run: Path) -> int:
    """`ravelive train`, or `--resume` when the run stopped early; returns the step of its checkpoint."""
    steps = build_config(DEFAULT_PRESETS, DEFAULT_SETTINGS).train.steps
    if checkpoint_path(run).exists():
        done = load_checkpoint(run)["step"]
        if done >= steps:
            return done
        print(f"resuming {run} at step {done}")
        return train_run(data, run, DEFAULT_PRESETS, (f"steps={steps}",), resume=True, on_step=progress).step
    return train_run(data, run, DEFAULT_PRESETS, DEFAULT_SETTINGS, on_step=progress).step


def progress(report) -> None:
    if report.step % 100 == 0 or report.step == report.steps:
        losses = "  ".join(f"{name} {value:.3f}" for name, value in report.losses.items())
        print(f"step {report.step}/{report.steps}  {losses}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("build/default-model"),
                        help="folder for the corpus, dataset and training run (kept: a rerun continues)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="where to write the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(THREADS)
    config = build_config(DEFAULT_PRESETS, DEFAULT_SETTINGS)
    started = time.monotonic()

    print("corpus:", make_corpus(args.work / "corpus"))
    settings = PreprocessSettings(sample_rate=SAMPLE_RATE, example_length=config.train.example_length)
    report = preprocess([args.work / "corpus"], args.work / "data", settings)
    print(f"dataset: {report.examples} examples of {settings.example_length} samples")

    training_started = time.monotonic()
    step = train_to_the_end(args.work / "data", args.work / "run")
    print(f"trained to step {step} ({(time.monotonic() - training_started) / 60:.1f} min in this call)")

    exported = export_run(args.work / "run", args.out)
    model = NNModel.load(exported.path)
    parameters = sum(p.numel() for p in model.module.parameters())
    print(f"{exported.path}: {exported.path.stat().st_size / 1e6:.2f} MB, {parameters} parameters, forward latency "
          f"{model.metadata['methods']['forward']['delay']} samples, realtime factor {exported.realtime_factor:.3f} "
          f"at block {exported.block}")

    untrained = NNModel.load(export_rave(config.model, args.work / "untrained.ts", seed=config.train.seed))
    print(f"held-out spectral distance (seed {HELD_OUT_SEED}; lower is closer):")
    for name, audio in held_out().items():
        trained_distance = reconstruction_distance(audio, streamed_reconstruction(model, audio))
        untrained_distance = reconstruction_distance(audio, streamed_reconstruction(untrained, audio))
        print(f"  {name:<9} {len(audio) / SAMPLE_RATE:5.1f} s  trained {trained_distance:7.3f}  "
              f"untrained {untrained_distance:7.3f}  ratio {trained_distance / untrained_distance:.2f}")
    print(f"done in {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
