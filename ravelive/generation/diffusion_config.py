"""`ravelive train-diffusion`'s configuration: one frozen dataclass (the denoiser and how it trains) and presets.

`build_diffusion_config(["tiny"], ["lr=1e-3"])` starts from the defaults
(RAVE-Latent-Diffusion's UNet and training), applies each preset (or TOML
file with a [diffusion] table, such as a run's config.toml), then each
`--set KEY=VALUE`; on resume a `--set` that disagrees with the checkpoint is
refused naming the key, except for the resumable ones (table_config: more
steps, other intervals, another device), as `ravelive train` does.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ravelive.errors import ConfigError
from ravelive.generation.table_config import ConfigTable, check_fields, positive


@dataclass(frozen=True)
class DiffusionConfig:
    """A 1-D U-Net denoiser over normalised latent sequences, and its training; saved with every checkpoint."""

    # ---- the denoiser (RAVE-Latent-Diffusion's UNetV0 by default: 2048 frames down to 1 at the bottom) ----
    channels: tuple[int, ...] = (256, 256, 256, 256, 512, 512, 512, 768, 768)  # width of each level
    factors: tuple[int, ...] = (1, 4, 4, 4, 2, 2, 2, 2, 2)  # downsampling into each level; their product divides length
    items: tuple[int, ...] = (1, 2, 2, 2, 2, 2, 2, 4, 4)  # residual blocks per level, on the way down and up
    attentions: tuple[bool, ...] = (False,) * 5 + (True,) * 4  # self-attention after each block of the coarse levels
    attention_heads: int = 12
    attention_features: int = 64  # per head
    # ---- training ----
    steps: int = 200_000  # optimisation steps in all; resume may raise it
    batch_size: int = 8  # sequences per step in each process
    lr: float = 1e-4  # AdamW learning rate (RAVE-Latent-Diffusion's)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    clip_grad_norm: float = 1.0  # largest global gradient norm; 0: no clipping
    seed: int = 0  # initial weights, batch order, noise and time steps: the same seed trains the same denoiser
    log_interval: int = 10  # steps between TensorBoard scalars
    checkpoint_interval: int = 5000  # steps between checkpoints (one more at the end)
    device: str = "auto"  # "auto": cuda if available, else cpu; or any torch device name

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:  # a frozen dataclass normalising its own fields (TOML gives lists)
            object.__setattr__(self, name, value)

        for name in ("channels", "factors", "items", "attentions"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"diffusion config {name} = {value!r}: expected a list, one value per level")
            set_(name, tuple(bool(v) for v in value) if name == "attentions" else tuple(value))
        levels = len(self.channels)
        for name in ("factors", "items", "attentions"):
            if len(getattr(self, name)) != levels:
                raise ConfigError(f"diffusion config {name} = {list(getattr(self, name))}: expected {levels} values, "
                                  f"one per level of channels = {list(self.channels)}")
        for name in ("channels", "factors", "items"):
            if not getattr(self, name) or any(not positive(v) for v in getattr(self, name)):
                raise ConfigError(f"diffusion config {name} = {list(getattr(self, name))}: expected positive integers")
        check_fields(self, "diffusion", counts=("attention_heads", "attention_features"))

    @property
    def stride(self) -> int:
        """Frames of the input per frame at the coarsest level: a sequence's length must be a multiple of it."""
        return math.prod(self.factors)

    def check_length(self, length: int) -> None:
        """ConfigError unless sequences of `length` frames go down the U-Net and come back whole."""
        if length % self.stride:
            raise ConfigError(
                f"latent sequences of {length} frames do not divide by the denoiser's downsampling "
                f"{'x'.join(map(str, self.factors))} = {self.stride}: encode the corpus with `ravelive latents "
                f"--length` a multiple of {self.stride}, or --set factors=[...] with a product dividing {length}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as `config.toml`'s one table."""
        return {"diffusion": asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DiffusionConfig":
        return cls(**data["diffusion"])


PRESETS: dict[str, dict[str, Any]] = {
    # the defaults: RAVE-Latent-Diffusion's UNet for 2048-frame sequences, 203 M parameters at 128 latents
    "raveld": {},
    # tests and quick looks: three levels (x4 downsampling), attention at the coarsest, 83 k parameters at 8 latents
    "tiny": {"channels": (16, 32, 32), "factors": (1, 2, 2), "items": (1, 1, 1), "attentions": (False, False, True),
             "attention_heads": 2, "attention_features": 8, "batch_size": 4, "lr": 1e-3, "log_interval": 1,
             "checkpoint_interval": 50},
}

DIFFUSION_TABLE = ConfigTable("diffusion", DiffusionConfig, PRESETS)


def build_diffusion_config(names: Sequence[str] = (), settings: Sequence[str] = ()) -> DiffusionConfig:
    """A new run's config: the defaults, then each preset, then each --set."""
    return DIFFUSION_TABLE.build(names, settings)


def resumed_diffusion_config(saved: DiffusionConfig, names: Sequence[str] = (),
                             settings: Sequence[str] = ()) -> DiffusionConfig:
    """The checkpoint's config with the resumable `settings` changed; any other disagreement is refused."""
    return DIFFUSION_TABLE.resumed(saved, names, settings)
