"""Training a descriptor-conditioned model: the corpus range, and the latent discriminator that removes them.

The decoder of a model with `RaveConfig.descriptors` reads the input's
descriptors next to the latent (models/rave/conditioning.py). For a knob to
change the sound, the latent must not carry the same information, or the
decoder learns to ignore the knob. So, in phase 1:

- a small conv net (`LatentDescriptorDiscriminator`) learns to predict the
  normalised descriptors from the (detached) latent, by mean squared error;
- the encoder is trained on the confusion criterion: the discriminator's
  prediction from the latent should be the batch mean of the descriptors,
  what a predictor that knows nothing about the frame would say. Maximising
  the discriminator's error instead is unbounded and is won by encoding the
  descriptor inverted, which carries it as well as encoding it; the mean
  target is bounded and is reached only when the latent tells the
  discriminator nothing. Its weight is `descriptor_confusion_weight`.

Phase 2 freezes the encoder, so the discriminator stops there too.

`corpus_range` measures the descriptors on the dataset once, at the start of
a new run; the model keeps it as a buffer, so checkpoints, resume and export
all use the same mapping onto [-1, 1].
"""

from typing import Any

import torch
from torch import nn

from ravelive.models.rave.conditioning import DescriptorInput

RANGE_EXAMPLES = 1024  # at most this many examples, evenly spaced over the dataset, give the corpus range
RANGE_BATCH = 32  # examples measured at once
HIDDEN = 64  # channels of the latent discriminator's convs


class LatentDescriptorDiscriminator(nn.Module):
    """Latent [b, latent, m] -> predicted normalised descriptors [b, descriptors, m] (offline, training only)."""

    def __init__(self, latent_dims: int, descriptors: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(latent_dims, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, descriptors, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DescriptorAdversary:
    """The latent discriminator and its optimiser; `step` trains it once and returns the encoder's confusion loss."""

    def __init__(self, discriminator: LatentDescriptorDiscriminator, **adam: Any) -> None:
        self.discriminator = discriminator
        self.judge: nn.Module = discriminator  # the loop sets its DistributedDataParallel wrapper under torchrun
        self.optimizer = torch.optim.Adam(discriminator.parameters(), **adam)

    def step(self, latent: torch.Tensor, descriptors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(discriminator loss, confusion loss for the encoder) for one batch of latents and their descriptors."""
        loss = nn.functional.mse_loss(self.judge(latent.detach()), descriptors)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # the unwrapped discriminator: its gradients from the confusion are dropped at its next zero_grad
        uninformed = descriptors.mean(dim=(0, 2), keepdim=True).expand_as(descriptors)
        confusion = nn.functional.mse_loss(self.discriminator(latent), uninformed)
        return loss.detach(), confusion

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


@torch.no_grad()
def corpus_range(dataset: torch.utils.data.Dataset, conditioning: DescriptorInput,
                 examples: int = RANGE_EXAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-descriptor (min, max) of the raw descriptors over up to `examples` of `dataset`, evenly spaced."""
    count = min(len(dataset), examples)
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().unique().tolist()
    low = high = None
    for start in range(0, len(indices), RANGE_BATCH):
        audio = torch.stack([dataset[i] for i in indices[start:start + RANGE_BATCH]])[:, 0]  # [batch, samples]
        values = conditioning.measure(audio.to(conditioning.range.device)).transpose(0, 1).flatten(1)
        batch_low, batch_high = values.min(dim=1).values, values.max(dim=1).values
        low = batch_low if low is None else torch.minimum(low, batch_low)
        high = batch_high if high is None else torch.maximum(high, batch_high)
    return low, high
