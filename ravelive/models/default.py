"""The small default model shipped inside the package (`default.ts`), and the recipe that trains it.

A RAVE-family model (`ravelive.models.rave`) trained by this project's own
pipeline (`ravelive preprocess`, `ravelive train`, `ravelive export`) on a
synthetic corpus that `ravelive.training.synthetic` regenerates from a seed
(tones, chords, noise bursts, sweeps) plus espeak-ng speech where installed.
`tools/make_default_model.py` runs the whole recipe below and writes the
file. The model: 48 kHz, causal convolutions, 8 PQMF bands x ratios 4.4.4 =
512 samples per latent frame, 8 latents, capacity 8, no noise generator (71 k
parameters): cheap enough to serve on one core with a wide margin, which
the test suite relies on. Its latency is the PQMF's and one latent frame
(the file says how many samples). Nothing here imports torch, so the CLI
can name the path cheaply.
"""

from pathlib import Path

DEFAULT_MODEL_PATH = Path(__file__).with_name("default.ts")
"""The bundled model file (package data)."""

DEFAULT_PRESETS = ("causal",)
"""`ravelive train --config` presets of the default model."""

DEFAULT_SETTINGS = (
    # the model: 48 kHz, 8 bands x 4.4.4 = ratio 512, 8 latents, small enough for a shared 2-core machine;
    "sample_rate=48000", "bands=8", "capacity=8", "ratios=[4, 4, 4]", "dilations=[[1, 3], [1, 3], [1, 3]]",
    "latent_dims=8", "use_noise=false",  # no noise generator: the least compute per block
    # the training: reconstruction only (phase 1), short examples, a learning rate for a short CPU budget
    "steps=6000", "phase_1_steps=1000000", "batch_size=4", "example_length=32768", "lr=1e-3", "beta=0.01",
    "kl_warmup_steps=2000", "checkpoint_interval=250", "audio_interval=1000",
)
"""`ravelive train --set` settings of the default model, applied after DEFAULT_PRESETS."""

CORPUS_SEED = 0
"""Seed of the training corpus (`ravelive.training.synthetic`)."""

HELD_OUT_SEED = 1
"""Seed of the held-out material the bundled model is measured on (never trained on)."""
