"""The small default model shipped inside the package (`default.ts`).

An untrained StreamingAutoencoder with the default AutoencoderConfig (48 kHz,
ratio 512, 8 latents, causal: zero delay), built deterministically from
`DEFAULT_SEED` by `build_default_model`, which `tools/build_default_model.py`
runs. A trained model will replace it. Nothing here imports torch until a
model is built, so the CLI can name the path cheaply.
"""

from pathlib import Path

DEFAULT_MODEL_PATH = Path(__file__).with_name("default.ts")
"""The bundled model file (package data)."""

DEFAULT_SEED = 0
"""Seed of the default model's weights: rebuilding with it gives the same outputs."""


def build_default_model(path: str | Path = DEFAULT_MODEL_PATH) -> Path:
    """Build, save and verify the default model at `path` (default: the bundled file)."""
    from ravelive.models.autoencoder import AutoencoderConfig, export_autoencoder

    return export_autoencoder(AutoencoderConfig(), path, seed=DEFAULT_SEED)
