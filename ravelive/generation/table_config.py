"""A run config held in one TOML table: presets, `--config FILE.toml`, `--set KEY=VALUE`, and what resume may change.

The latent-corpus trainers (`train-diffusion`, `train-prior`) each have one
frozen dataclass saved as one table of `config.toml` ([diffusion], [prior]).
`ConfigTable` builds a new run's config from the defaults, then each preset
or TOML file named by `--config`, then each `--set` (VALUE read as TOML, as
`ravelive train` reads it); on resume the checkpoint's config is the run's,
and a `--set` that disagrees with it is refused naming the key, except for
the resumable keys (more steps, other intervals, another device).
"""

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ravelive.errors import ConfigError
from ravelive.training.config import parse_setting, refuse_disagreement, tomllib

# what a resume may change: how long, how often it reports, where it runs; nothing that changes the maths
RESUMABLE_KEYS = frozenset({"steps", "log_interval", "checkpoint_interval", "device"})


@dataclass(frozen=True)
class ConfigTable:
    """How one config class (a frozen dataclass) is built from presets, TOML files and --set settings."""

    table: str  # its table in config.toml, and the word in messages: "diffusion", "prior"
    config_type: type
    presets: Mapping[str, Mapping[str, Any]]
    resumable: frozenset[str] = RESUMABLE_KEYS

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(field.name for field in fields(self.config_type))

    def build(self, names: Sequence[str] = (), settings: Sequence[str] = ()) -> Any:
        """A new run's config: the defaults, then each preset, then each --set."""
        return replace(self.config_type(), **{key: value for _, key, value in self._changes(names, settings)})

    def resumed(self, saved: Any, names: Sequence[str] = (), settings: Sequence[str] = ()) -> Any:
        """The checkpoint's config with the resumable `settings` changed; any other disagreement is refused."""
        resumable: dict[str, Any] = {}
        for source, key, value in self._changes(names, settings):
            if key in self.resumable:
                resumable[key] = value
            else:
                refuse_disagreement(saved, source, key, value)
        return replace(saved, **resumable)

    def _changes(self, names: Sequence[str], settings: Sequence[str]) -> list[tuple[str, str, Any]]:
        """(source, key, value) for every change the presets and `--set` settings ask for, in order."""
        changes: list[tuple[str, str, Any]] = []
        for name in names:
            if name in self.presets:
                changes += [(f"--config {name}", key, value) for key, value in self.presets[name].items()]
            elif name.endswith(".toml"):  # a run's own config.toml, say
                changes += [(f"--config {name}", key, value) for key, value in self._toml_table(Path(name)).items()]
            else:
                raise ConfigError(f"--config {name!r}: neither a {self.table} preset "
                                  f"({', '.join(sorted(self.presets))}) nor a .toml file with a [{self.table}] table")
        changes += [(f"--set {text}", *parse_setting(text)) for text in settings]
        keys = self.keys
        for source, key, _ in changes:
            if key not in keys:
                close = difflib.get_close_matches(key, sorted(keys), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the keys: {', '.join(sorted(keys))}"
                raise ConfigError(f"{source}: unknown {self.table} key {key!r}; {hint}")
        return changes

    def _toml_table(self, path: Path) -> dict[str, Any]:
        try:
            return dict(tomllib.loads(path.read_text())[self.table])
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"--config {path}: cannot read a [{self.table}] table from it ({error}); give a preset "
                              f"name or a {self.table} run's config.toml") from None


def check_fields(config: Any, table: str, *, numbers: Sequence[str] = (), counts: Sequence[str] = ()) -> None:
    """ConfigError naming the first bad field of the frozen dataclass `config` (in its __post_init__).

    `numbers` must be >= 0 (an integer from TOML becomes a float); `counts` whole numbers >= 1; with the
    training fields every corpus config has: lr, weight_decay, clip_grad_norm, steps, batch_size,
    log_interval, checkpoint_interval, seed and device.
    """
    for name in ("lr", "weight_decay", "clip_grad_norm", *numbers):
        value = getattr(config, name)
        if isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, name, float(value))  # a frozen dataclass normalising its own field
        if not isinstance(getattr(config, name), float) or not getattr(config, name) >= 0:
            raise ConfigError(f"{table} config {name} = {value!r}: expected a number >= 0")
    for name in ("steps", "batch_size", "log_interval", "checkpoint_interval", *counts):
        if not positive(getattr(config, name)):
            raise ConfigError(f"{table} config {name} = {getattr(config, name)!r}: expected a positive integer")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ConfigError(f"{table} config seed = {config.seed!r}: expected an integer >= 0")
    if not isinstance(config.device, str) or not config.device:
        raise ConfigError(f"{table} config device = {config.device!r}: expected 'auto', 'cpu' or 'cuda'")


def positive(value: Any) -> bool:
    """Whether `value` is a whole number >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
