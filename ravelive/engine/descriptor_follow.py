"""A descriptor-conditioned model's extra decode inputs in the engine's latent path: knobs or the input's own.

A conditioned ravelive export (docs/generation.md, "Descriptor-conditioned
models") decodes `[latent; descriptors]`. Its `forward` measures the
descriptors on its input, so a stream with no knob turned plays `forward`
as any model. Once the latent path runs (a latent edit, the loop, the prior,
or a descriptor whose follow is off), the engine builds decode's input
itself: each descriptor is its knob's value (`descriptor/<name>`, -1..1),
or, while it follows, the input's own, measured by the model's own
streaming descriptor code (models/rave/conditioning.py) from the file's
config and corpus range, aligned to encode's delay as forward aligns it.
That measurement keeps its own stream state: the first blocks of a latent
path after forward hear a stale one, as the encoder's cache after a swap.
"""

import torch

from ravelive.models.nn_model import NNModel
from ravelive.models.rave.conditioning import DescriptorInput
from ravelive.models.rave.config import RaveConfig


class DescriptorFollower:
    """Audio blocks [1, 1, n] -> decode's descriptor inputs [1, descriptors, n / ratio], knob or followed."""

    def __init__(self, model: NNModel) -> None:
        self.names = model.descriptors
        described, encode = model.metadata["descriptors"], model.methods["encode"]
        self._measure = DescriptorInput(RaveConfig(**model.metadata["config"]), streaming=True, max_batch=1,
                                        latent_delay=model.delay("encode") // encode.out_ratio)
        low = torch.tensor([described["min"][name] for name in self.names])
        high = torch.tensor([described["max"][name] for name in self.names])
        self._measure.set_range(low, high)

    def __call__(self, audio: torch.Tensor, knobs: tuple[float | None, ...]) -> torch.Tensor:
        """`knobs`: one value per descriptor, None where it follows `audio` (an empty tuple: all follow)."""
        values = self._measure(audio)
        for index, knob in enumerate(knobs):
            if knob is not None:
                values[:, index] = knob
        return values

    def reset(self) -> None:
        self._measure.reset()
