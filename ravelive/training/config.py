"""Training configuration: one frozen dataclass, and how the CLI combines it with the model's presets.

A run is described by two configs: the model's `RaveConfig` (what gets
exported) and this `TrainConfig` (how it is trained). The CLI builds both
from `--config NAME` (a model preset such as `tiny` or `causal`, or a TOML
file with `[model]` and `[train]` tables, e.g. a run's own `config.toml`) and
`--set KEY=VALUE`, where KEY is a field of either config: the two sets of
names are disjoint, so a key says by itself which config it changes.

Both are saved in every checkpoint and as `config.toml` in the run folder.
On resume the checkpoint's configs are the run's; a `--config` or `--set`
that disagrees with them is refused (a run trained half with one lr and half
with another reproduces neither), except for RESUMABLE_KEYS: more steps,
other intervals, another device.
"""

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ravelive.errors import ConfigError
from ravelive.models.rave.config import PRESETS, RaveConfig, resolve_config

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    """How a RAVE-family model is trained; saved with every checkpoint."""

    steps: int = 6_000_000  # optimisation steps in all (RAVE trains for millions); resume may raise it
    phase_1_steps: int = 1_000_000  # reconstruction only; from this step on the encoder is frozen, the GAN trains
    batch_size: int = 8  # examples per step in each process (RAVE's); torchrun with N processes sees N times more
    example_length: int = 131072  # samples per example (RAVE's n_signal, ~3 s at 44.1 kHz); a multiple of the ratio
    lr: float = 1e-4  # Adam learning rate of the model and the discriminator (RAVE's)
    adam_betas: tuple[float, float] = (0.5, 0.9)  # low first momentum, usual for GANs (RAVE's)
    clip_grad_norm: float = 0.0  # largest global gradient norm per optimiser; 0: no clipping (RAVE does not clip)
    beta: float = 0.1  # weight of the KL (or MMD) term once warmed up; higher: a smoother, less detailed latent
    kl_warmup_steps: int = 200_000  # beta rises linearly from 0: the latent first learns to carry the sound
    stft_scales: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)  # STFT windows of the spectral distance
    adversarial_weight: float = 1.0  # weight of the generator's hinge loss in phase 2
    feature_matching_weight: float = 10.0  # weight of the discriminator feature distance in phase 2 (RAVE's 10)
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)  # multi-period discriminator (HiFi-GAN's primes, RAVE v2's)
    discriminator_scales: int = 3  # multi-scale discriminator: audio at 1, 1/2, 1/4 ... of the rate
    discriminator_capacity: int = 0  # channels of each discriminator's first conv, x4 per layer; 0: follow the model
    discriminator_layers: int = 4  # strided convs per discriminator
    discriminator_every: int = 4  # phase 2: the discriminator trains 1 step in N, the decoder the others; 1: both
    descriptor_confusion_weight: float = 1.0  # a conditioned model's encoder against its latent descriptor predictor
    augment: tuple[str, ...] = ()  # training/augment.py, applied in this order to every batch: mute, gain, compress
    seed: int = 0  # model initialisation, sampling order, crops, noise: the same seed trains the same model
    log_interval: int = 10  # steps between TensorBoard scalars
    audio_interval: int = 1000  # steps between TensorBoard audio examples and spectrograms
    checkpoint_interval: int = 5000  # steps between checkpoints (one more at the end)
    workers: int = 0  # DataLoader worker processes; 0 keeps crops in this process, so a resume is bit-for-bit
    device: str = "auto"  # "auto": cuda if available, else cpu; or any torch device name ("cpu", "cuda:1")

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:  # a frozen dataclass normalising its own fields
            object.__setattr__(self, name, value)

        for name in ("adam_betas", "stft_scales", "periods", "augment"):  # TOML gives lists
            set_(name, tuple(getattr(self, name)))
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type is float and isinstance(value, int) and not isinstance(value, bool):
                set_(field.name, float(value))  # lr=1 means 1.0
        positive = ("steps", "batch_size", "example_length", "discriminator_layers", "discriminator_every",
                    "discriminator_scales", "log_interval", "audio_interval", "checkpoint_interval")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"training config {name} = {value!r}: expected a positive integer")
        from ravelive.training.augment import build_augmentations

        build_augmentations(self.augment, 44100)  # an unknown name is refused here, before any data is read
        for name in ("phase_1_steps", "kl_warmup_steps", "workers", "seed", "discriminator_capacity"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"training config {name} = {value!r}: expected an integer >= 0")
        for name in ("lr", "beta", "clip_grad_norm", "adversarial_weight", "feature_matching_weight",
                     "descriptor_confusion_weight"):
            value = getattr(self, name)
            if not isinstance(value, float) or not value >= 0:
                raise ConfigError(f"training config {name} = {value!r}: expected a number >= 0")
        if len(self.adam_betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"training config adam_betas = {self.adam_betas!r}: expected two numbers in [0, 1)")
        for name in ("stft_scales", "periods"):
            value = getattr(self, name)
            if not value or any(not isinstance(v, int) or v < 2 for v in value):
                raise ConfigError(f"training config {name} = {value!r}: expected a list of integers >= 2")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"training config device = {self.device!r}: expected 'auto', 'cpu' or 'cuda'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MODEL_KEYS = frozenset(field.name for field in fields(RaveConfig))
TRAIN_KEYS = frozenset(field.name for field in fields(TrainConfig))
# what a resume may change: how long, how often it reports, where it runs; nothing that changes the maths
RESUMABLE_KEYS = frozenset({"steps", "log_interval", "audio_interval", "checkpoint_interval", "workers", "device"})


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # RAVE's configs/v2_small.gin: update_discriminator_every = 2 (v2.gin's 4 is TrainConfig's default)
    "v2_small": {"discriminator_every": 2},
}
"""What a model preset (models/rave/config.py PRESETS) changes in how it is trained, where RAVE's config does."""

JOINT_STEPS_BEFORE_ALTERNATION = {"discriminator_every": 1}
"""The schedule of a run saved before `discriminator_every` existed: both networks in every step."""


MODEL_CAPACITY_PER_DISCRIMINATOR_CAPACITY = 6
"""discriminator_capacity = 0 means the model's capacity / 6, at least 1.

RAVE's discriminator follows the model: its ConvNets start at the model's
capacity and double per layer, so its size grows as capacity**2 (27.1 M for
v2's 96, 6.8 M for v2_small's 48, 0.49 M for raspberry's 16). Ours grows x4
per layer, so it needs a narrower start for the same growth: 1/6 gives 16 for
v2 (33.6 M), 8 for v2_small (8.4 M), 2 for raspberry (0.53 M), 1.24 times
RAVE's count at every width. A fixed width would make the small presets
spend most of phase 2 in a v2-sized discriminator.
"""


def model_discriminator_capacity(model: RaveConfig) -> int:
    """The discriminator_capacity that `0` stands for with this model."""
    return max(1, model.capacity // MODEL_CAPACITY_PER_DISCRIMINATOR_CAPACITY)


@dataclass(frozen=True)
class RunConfig:
    """The two configs of a run; a discriminator_capacity of 0 is resolved here, from the model."""

    model: RaveConfig
    train: TrainConfig

    def __post_init__(self) -> None:
        if self.train.discriminator_capacity == 0:  # saved resolved: the run keeps its width if the rule changes
            resolved = replace(self.train, discriminator_capacity=model_discriminator_capacity(self.model))
            object.__setattr__(self, "train", resolved)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        return cls(RaveConfig(**data["model"]), TrainConfig(**(JOINT_STEPS_BEFORE_ALTERNATION | data["train"])))


def parse_setting(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, value); VALUE is read as TOML (1e-4, true, [4, 2]), else kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set lr=1e-3")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # regularizer=wasserstein, device=cpu
    return key, value


def check_key(key: str, source: str) -> None:
    """Refuse a key that is neither a model nor a training key, naming the near miss."""
    if key in MODEL_KEYS or key in TRAIN_KEYS:
        return
    close = difflib.get_close_matches(key, sorted(MODEL_KEYS | TRAIN_KEYS), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "check the spelling"
    raise ConfigError(
        f"{source}: unknown key {key!r}, neither a model key ({', '.join(sorted(MODEL_KEYS))}) nor a training key "
        f"({', '.join(sorted(TRAIN_KEYS))}); {hint}"
    )


def config_changes(names: Sequence[str], settings: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(source, key, value) for every change `--config` NAMEs and `--set` settings ask for, in order."""
    changes: list[tuple[str, str, Any]] = []
    for name in names:
        if name in PRESETS:
            preset = PRESETS[name] | TRAIN_PRESETS.get(name, {})
            changes += [(f"--config {name}", key, value) for key, value in preset.items()]
        elif name.endswith(".toml"):
            changes += _toml_changes(Path(name))
        else:
            raise ConfigError(
                f"--config {name!r}: neither a model preset ({', '.join(sorted(PRESETS))}) nor a .toml file; "
                "list several presets to combine them"
            )
    for text in settings:
        key, value = parse_setting(text)
        changes.append((f"--set {text}", key, value))
    for source, key, _ in changes:
        check_key(key, source)
    return changes


def _toml_changes(path: Path) -> list[tuple[str, str, Any]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"--config {path}: cannot read it as TOML ({error}); give a preset name or a TOML file")
    unknown = set(data) - {"model", "train"}
    if unknown:
        raise ConfigError(f"--config {path}: unknown table(s) {', '.join(sorted(unknown))}; expected [model], [train]")
    return [(f"--config {path}", key, value) for table in ("model", "train") for key, value in data.get(table, {}).items()]


def build_config(names: Sequence[str] = (), settings: Sequence[str] = ()) -> RunConfig:
    """A new run's configs: the defaults (RAVE v2, TrainConfig()), then each --config, then each --set."""
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for _, key, value in config_changes(names, settings):
        (model if key in MODEL_KEYS else train)[key] = value
    return RunConfig(resolve_config([], model), replace(TrainConfig(), **train))


def resumed_config(saved: RunConfig, names: Sequence[str] = (), settings: Sequence[str] = ()) -> RunConfig:
    """The checkpoint's configs, with the RESUMABLE_KEYS `settings` change; any other disagreement is refused."""
    train: dict[str, Any] = {}
    for source, key, value in config_changes(names, settings):
        if key in RESUMABLE_KEYS:
            train[key] = value
        elif key in MODEL_KEYS:
            refuse_disagreement(saved.model, source, key, value)
        else:  # through RunConfig, so discriminator_capacity=0 means the width it resolves to
            resolved = getattr(replace(saved, train=replace(saved.train, **{key: value})).train, key)
            refuse_disagreement(saved.train, source, key, resolved)
    return RunConfig(saved.model, replace(saved.train, **train))


def refuse_disagreement(saved: Any, source: str, key: str, value: Any) -> None:
    """ConfigError when setting `key` to `value` in the checkpoint's frozen dataclass `saved` would change it."""
    current = getattr(saved, key)
    wanted = getattr(replace(saved, **{key: value}), key)  # normalised: lists -> tuples, 1 -> 1.0
    if wanted != current:
        shown = source if source.startswith("--set") else f"{source} (sets {key}={value!r})"
        raise ConfigError(f"{shown} disagrees with the checkpoint's {key}={current!r}: drop it or start a new run")


def to_toml(config: Any) -> str:
    """`config.toml` of a run (a RunConfig, or any config whose `to_dict()` gives tables): reusable with `--config`."""
    import tomlkit

    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value

    data = {table: {key: plain(value) for key, value in values.items()} for table, values in config.to_dict().items()}
    return "# written by ravelive; reuse with --config this-file.toml\n" + tomlkit.dumps(data)
