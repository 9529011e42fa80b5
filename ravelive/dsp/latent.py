"""Latent transforms: what a performer does to a model's latent trajectory.

`LatentTransform` is an immutable snapshot (control threads build a new one
and replace it whole; the engine reads one per block). `LatentProcessor`
applies it to every latent frame, [1, dims, frames] at a time, keeping the
state that needs memory: the last emitted value of each dimension (for
freeze), a seeded random generator (for noise) and the latent loop
(`dsp/latent_loop.py`: record, play, overdub).

Per dimension d and frame t, in this order (the engine gives it the
prior's frames in place of the encoder's while `prior.play` is on):
    z = the loop's frame t            while the loop plays (else the encoder's or the prior's)
    v = replace[d]                   if replace[d] is not None
        z[d, t] * scale[d] + bias[d] otherwise
    v = v + noise[d] * N(0, 1)
    v = previous output of d         if freeze[d] (the value before the freeze began)
"""

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch

from ravelive.dsp.latent_loop import LatentLooper, LoopControl
from ravelive.errors import ParameterError

NOISE_SEED = 0  # default seed of the latent noise, so offline renders repeat


@dataclass(frozen=True)
class PriorControl:
    """Whether the engine decodes its prior's frames in place of the encoder's, and at what temperature."""

    play: bool = False
    temperature: float = 1.0  # 0: the prior's mean path; 1: sampled as trained


@dataclass(frozen=True)
class LatentTransform:
    """Per-dimension bias, scale, freeze, replace and noise amount (tuples of one value per dimension); the loop,
    the prior, and a descriptor-conditioned model's knobs."""

    bias: tuple[float, ...]
    scale: tuple[float, ...]
    freeze: tuple[bool, ...]
    replace: tuple[float | None, ...]
    noise: tuple[float, ...]
    loop: LoopControl = LoopControl()
    prior: PriorControl = PriorControl()
    descriptors: tuple[float | None, ...] = ()  # a conditioned model's knobs in [-1, 1]; None: follow the input

    def __post_init__(self) -> None:
        sizes = {name: len(getattr(self, name)) for name in ("bias", "scale", "freeze", "replace", "noise")}
        if len(set(sizes.values())) != 1:
            raise ParameterError(f"latent transform fields differ in length {sizes}; give one value per dimension")

    @classmethod
    def identity(cls, dims: int) -> "LatentTransform":
        """The transform that changes nothing, for a latent of `dims` dimensions."""
        return cls((0.0,) * dims, (1.0,) * dims, (False,) * dims, (None,) * dims, (0.0,) * dims)

    @property
    def dims(self) -> int:
        return len(self.bias)

    @functools.cached_property
    def active(self) -> bool:
        """Whether applying it changes anything (when not, the engine runs `forward`)."""
        return (
            any(value != 0.0 for value in self.bias)
            or any(value != 1.0 for value in self.scale)
            or any(self.freeze)
            or any(value is not None for value in self.replace)
            or any(value != 0.0 for value in self.noise)
            or self.loop.active
            or self.prior.play
            or any(value is not None for value in self.descriptors)
        )

    def with_value(self, field: str, dim: int, value: float | bool | None) -> "LatentTransform":
        """A copy with `field` (bias, scale, freeze, replace, noise) of dimension `dim` set to `value`."""
        if field not in ("bias", "scale", "freeze", "replace", "noise"):
            raise ParameterError(f"latent field '{field}' is unknown; use bias, scale, freeze, replace or noise")
        if not 0 <= dim < self.dims:
            raise ParameterError(f"latent dimension {dim} is out of range [0, {self.dims - 1}]; this model has {self.dims}")
        values = list(getattr(self, field))
        values[dim] = value
        return dataclasses.replace(self, **{field: tuple(values)})


class LatentProcessor:
    """Applies LatentTransforms frame by frame; holds the freeze memory and the noise generator."""

    def __init__(self, dims: int, seed: int = NOISE_SEED) -> None:
        self.dims = dims
        self._held = np.zeros(dims, dtype=np.float32)
        self._has_held = False
        self._rng = np.random.default_rng(seed)
        self.looper = LatentLooper(dims)

    def forget_held(self) -> None:
        """The latent stream was interrupted (blocks ran `forward`): freeze starts from the next frame."""
        self._has_held = False

    def __call__(self, transform: LatentTransform, z: torch.Tensor) -> torch.Tensor:
        """Transform z [1, dims, frames]; returns a new tensor of the same shape."""
        if transform.dims != self.dims:
            raise ParameterError(
                f"latent transform has {transform.dims} dimensions, the model's latent has {self.dims}; "
                f"build it with LatentTransform.identity({self.dims})"
            )
        result = torch.empty_like(z)  # torch-allocated: aligned for the model's kernels (see InputAdapter)
        values = result[0].numpy()
        source = self.looper(transform.loop, z[0].numpy())
        np.multiply(source, np.asarray(transform.scale, dtype=np.float32)[:, None], out=values)
        values += np.asarray(transform.bias, dtype=np.float32)[:, None]
        for dim, value in enumerate(transform.replace):
            if value is not None:
                values[dim] = value
        if any(transform.noise):
            amounts = np.asarray(transform.noise, dtype=np.float32)[:, None]
            # drawn frame by frame, so the sequence is the same however the frames are split into blocks
            values += amounts * self._rng.standard_normal(values.shape[::-1], dtype=np.float32).T
        if any(transform.freeze):
            if not self._has_held:
                self._held[:] = values[:, 0]
            frozen = np.asarray(transform.freeze)
            values[frozen] = self._held[frozen, None]
        self._held[:] = values[:, -1]
        self._has_held = True
        return result
