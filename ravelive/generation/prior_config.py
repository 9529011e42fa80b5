"""`ravelive train-prior`'s configuration: one frozen dataclass (the prior network and how it trains) and presets.

`build_prior_config(["tiny"], ["lr=1e-3"])` starts from the defaults, applies
each preset (or TOML file with a [prior] table, such as a run's
config.toml), then each `--set KEY=VALUE`; on resume a `--set` that disagrees
with the checkpoint is refused naming the key, except for the resumable ones
(table_config: more steps, other intervals, another device).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ravelive.generation.table_config import ConfigTable, check_fields


@dataclass(frozen=True)
class PriorConfig:
    """A GRU over normalised latent frames predicting the next one, and its training; saved with every checkpoint."""

    # ---- the network (RAVE v1's prior is about this size: 512 wide, a few recurrent/causal layers) ----
    hidden: int = 512  # width of the input projection and of each GRU layer
    layers: int = 2  # stacked GRU layers
    # ---- training ----
    steps: int = 100_000  # optimisation steps in all; resume may raise it
    batch_size: int = 16  # sequences per step in each process
    lr: float = 1e-3  # AdamW learning rate: a GRU of this size trains well at Adam's usual rate
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    clip_grad_norm: float = 1.0  # largest global gradient norm; 0: no clipping (recurrent nets need it)
    seed: int = 0  # initial weights and batch order: the same seed trains the same prior
    log_interval: int = 10  # steps between TensorBoard scalars
    checkpoint_interval: int = 5000  # steps between checkpoints (one more at the end)
    device: str = "auto"  # "auto": cuda if available, else cpu; or any torch device name

    def __post_init__(self) -> None:
        check_fields(self, "prior", counts=("hidden", "layers"))

    def to_dict(self) -> dict[str, Any]:
        """The config as `config.toml`'s one table."""
        return {"prior": asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PriorConfig":
        return cls(**data["prior"])


PRESETS: dict[str, dict[str, Any]] = {
    # the defaults: 2 x 512 GRU, 3.35 M parameters at 128 latents (benchmarks/generate.py: its speed)
    "default": {},
    # tests and quick looks: one 64-wide layer, 27 k parameters at 8 latents
    "tiny": {"hidden": 64, "layers": 1, "batch_size": 4, "lr": 3e-3, "log_interval": 1, "checkpoint_interval": 50},
}

PRIOR_TABLE = ConfigTable("prior", PriorConfig, PRESETS)


def build_prior_config(names: Sequence[str] = (), settings: Sequence[str] = ()) -> PriorConfig:
    """A new run's config: the defaults, then each preset, then each --set."""
    return PRIOR_TABLE.build(names, settings)
