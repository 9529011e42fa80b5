"""RAVE-family model configuration: one frozen dataclass, named presets, and how they combine.

`resolve_config(["v2", "causal"], overrides={"capacity": 8})` starts from the
defaults (which are RAVE v2's), applies each preset's changes in order (a
later preset wins on a field both set), then `overrides`. Every preset names
the RAVE 2.x gin config it stands for; the compression ratio is
`bands * prod(ratios)` audio samples per latent frame.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ravelive.errors import ConfigError

REGULARIZERS = ("vae", "wasserstein")


@dataclass(frozen=True)
class RaveConfig:
    """Hyper-parameters of RaveModel; saved with every checkpoint and inside every export."""

    sample_rate: int = 44100  # native audio rate (RAVE's default); hosts resample around it
    bands: int = 16  # PQMF sub-bands: the networks run at sample_rate / bands
    pqmf_attenuation_db: float = 100.0  # stopband of the PQMF prototype (longer filter, more delay, when higher)
    capacity: int = 96  # width of the first encoder / last decoder stage; each stage doubles it
    ratios: tuple[int, ...] = (4, 4, 4, 2)  # downsampling per encoder stage at the band rate; the decoder mirrors it
    dilations: tuple[tuple[int, ...], ...] = ((1, 3, 9), (1, 3, 9), (1, 3, 9), (1, 3))  # residual units per stage
    kernel_size: int = 3  # kernel of the dilated convs; the in/out convs use 2 * kernel_size + 1
    upsample_kernel: int = 2  # decoder upsampling kernel, in low-rate frames (2: RAVE's transposed conv of 2 * ratio)
    latent_dims: int = 128  # latent channels of encode / decode
    regularizer: str = "vae"  # "vae": mean/scale -> sample, KL term; "wasserstein": deterministic latent, MMD term
    use_noise: bool = True  # add filtered noise bands to the decoder output (RAVE's NoiseGenerator)
    noise_ratios: tuple[int, ...] = (2, 2, 2)  # strides of the noise amplitude convs; their product is one noise frame
    noise_hidden: int = 128  # width of the noise amplitude convs
    causal: bool = False  # True: encoder and decoder convs never look ahead (the PQMF stays linear phase)
    # dsp/descriptors.py names (rms, centroid, ...): the decoder is conditioned on them, one knob each, at the latent
    # rate (hop = ratio, window = 2 * ratio); empty: a plain autoencoder
    descriptors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        for name in ("ratios", "noise_ratios"):  # TOML / JSON give lists
            set_(name, tuple(getattr(self, name)))
        set_("dilations", tuple(tuple(stage) for stage in self.dilations))
        if isinstance(self.descriptors, str):  # --set descriptors=rms,centroid
            set_("descriptors", tuple(name.strip() for name in self.descriptors.split(",") if name.strip()))
        set_("descriptors", tuple(self.descriptors))
        if self.descriptors:
            from ravelive.dsp.descriptors import check_descriptor_names  # torch: only for a conditioned model

            check_descriptor_names(self.descriptors)
            if len(set(self.descriptors)) < len(self.descriptors):
                raise ConfigError(f"RAVE config descriptors = {self.descriptors}: each descriptor once")
        counts = ("sample_rate", "bands", "capacity", "kernel_size", "upsample_kernel", "latent_dims", "noise_hidden")
        for name in counts:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"RAVE config {name} = {value!r}: expected a positive integer")
        if self.bands < 2:
            raise ConfigError(f"RAVE config bands = {self.bands}: expected at least 2 (RAVE uses 16)")
        for name in ("ratios", "noise_ratios"):
            value = getattr(self, name)
            if not value or any(not isinstance(r, int) or r < 1 for r in value):
                raise ConfigError(
                    f"RAVE config {name} = {value!r}: expected a non-empty tuple of positive integers like (4, 2)"
                )
        if len(self.dilations) != len(self.ratios) or any(
            not stage or any(not isinstance(d, int) or d < 1 for d in stage) for stage in self.dilations
        ):
            raise ConfigError(
                f"RAVE config dilations = {self.dilations!r}: expected one non-empty tuple of positive integers per "
                f"ratio ({len(self.ratios)} for ratios {self.ratios})"
            )
        if self.regularizer not in REGULARIZERS:
            raise ConfigError(
                f"RAVE config regularizer = {self.regularizer!r}: expected one of {', '.join(REGULARIZERS)}"
            )
        if self.use_noise and math.prod(self.ratios) % self.noise_frame:
            raise ConfigError(
                f"RAVE config noise_ratios = {self.noise_ratios}: a noise frame of {self.noise_frame} band frames must "
                f"divide one latent frame ({math.prod(self.ratios)}); use smaller noise_ratios or use_noise = False"
            )

    @property
    def ratio(self) -> int:
        """Audio samples per latent frame (the compression ratio, nn~'s encode ratio)."""
        return self.bands * math.prod(self.ratios)

    @property
    def noise_frame(self) -> int:
        """Band frames shaped by one set of noise amplitudes."""
        return math.prod(self.noise_ratios)

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels at each encoder stage's input, then at the latent end: capacity * 2**i."""
        return tuple(self.capacity * 2**i for i in range(len(self.ratios) + 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the export's ravelive.json)."""
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # RAVE 2.x configs/v2.gin + noise.gin (v2.gin alone has no noise generator): capacity 96, latent 128,
    # ratios 4.4.4.2 x 16 bands = 2048 compression (docs/training.md compares the counts)
    "v2": {},
    # configs/v2_small.gin: capacity 48, ratios 4.2.2.2 x 16 bands = 512 compression, noise hidden 64
    "v2_small": {"capacity": 48, "ratios": (4, 2, 2, 2), "noise_hidden": 64},
    # configs/raspberry.gin's size: capacity 16, no noise, 2048 compression; RAVE's is a v1 network (raspberry.gin
    # -> onnx.gin -> v1.gin), this is the v2 design at that width
    "raspberry": {"capacity": 16, "use_noise": False},
    # configs/causal.gin: every conv causal (cached_conv's get_padding mode 'causal')
    "causal": {"causal": True},
    # configs/wasserstein.gin: a deterministic latent regularised by MMD instead of a KL term
    "wasserstein": {"regularizer": "wasserstein"},
    # RAVE has none (NeuroRave-style): a decoder conditioned on loudness and brightness, removed from the latent
    "descriptors": {"descriptors": ("rms", "centroid")},
    # no RAVE counterpart: 4 bands, ratios 4.2 = 32 compression, 8 channels; tests and CPU smoke training
    "tiny": {
        "bands": 4, "capacity": 8, "ratios": (4, 2), "dilations": ((1, 3), (1, 3)), "latent_dims": 8,
        "noise_ratios": (2, 2), "noise_hidden": 8,
    },
}


def resolve_config(presets: Sequence[str] = ("v2",), overrides: Mapping[str, Any] | None = None) -> RaveConfig:
    """The defaults, then each named preset in order (later ones win), then `overrides`."""
    if isinstance(presets, str):
        presets = [presets]
    keys = {field.name for field in fields(RaveConfig)}
    changes: dict[str, Any] = {}
    for name in presets:
        if name not in PRESETS:
            raise ConfigError(
                f"unknown RAVE preset {name!r}: choose from {', '.join(sorted(PRESETS))} (list several to combine them)"
            )
        changes.update(PRESETS[name])
    for key in overrides or {}:
        if key not in keys:
            raise ConfigError(
                f"unknown RAVE config key {key!r}: expected one of {', '.join(sorted(keys))}; check the spelling"
            )
    changes.update(overrides or {})
    return replace(RaveConfig(), **changes)
