"""Training augmentations applied to a batch [batch, channels, frames]: mute, compress, gain.

The three RAVE trains with (rave/transforms.py: RandomMute, RandomCompress,
RandomGain), as small callables over a whole batch, each example drawing
its own chance and parameters. Each holds its own `torch.Generator` when
given a seed, so a run is repeatable whatever else draws random numbers;
without one they draw from torch's global RNG. The draws happen on the CPU
(a few numbers per batch) and the audio stays on its device.

None of them changes its input in place: the batch may be a DataLoader's
pinned buffer or a tensor the caller still needs.

`build_augmentations(["mute", "gain"], sample_rate, seed)` turns the names
of `--augment NAME` (repeatable) into one callable, applied in the order
given; an unknown name is a one-line ConfigError naming the allowed set.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ravelive.errors import ConfigError


class _Augmentation:
    """Holds the random source: a seeded generator of its own, or torch's global RNG."""

    def __init__(self, seed: int | None) -> None:
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def _uniform(self, count: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, generator=self.generator)

    def _chosen(self, count: int, prob: float) -> torch.Tensor:
        """Which of `count` examples are picked, each with probability `prob` (bool [count])."""
        return torch.rand(count, generator=self.generator) < prob


def _check_probability(name: str, prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"{name} probability {prob} is outside [0, 1]")


class Mute(_Augmentation):
    """Zero whole examples, each with probability `prob` (RAVE: 0.1).

    Teaches the model that silence in gives silence out, which a corpus
    with no pauses never shows it.
    """

    def __init__(self, prob: float = 0.1, seed: int | None = None) -> None:
        super().__init__(seed)
        _check_probability("mute", prob)
        self.prob = prob

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        keep = ~self._chosen(len(batch), self.prob)
        return batch * keep.to(batch.device, batch.dtype)[:, None, None]


class Gain(_Augmentation):
    """Scale examples, each with probability `prob`, by a gain drawn uniformly in [low_db, high_db] dB.

    RAVE's defaults: -6 to +3 dB, half the examples. With `limit`, an
    example the gain pushes past a peak of 1 is scaled down to a peak of
    exactly 1 (a model trained on clipped audio learns to clip). Widens the
    levels the model hears beyond the corpus's own.
    """

    def __init__(self, low_db: float = -6.0, high_db: float = 3.0, prob: float = 0.5, limit: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        _check_probability("gain", prob)
        if low_db > high_db:
            raise ConfigError(f"gain range [{low_db}, {high_db}] dB is empty; give low_db <= high_db")
        self.low_db, self.high_db, self.prob, self.limit = low_db, high_db, prob, limit

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        count = len(batch)
        db = torch.where(self._chosen(count, self.prob), self._uniform(count, self.low_db, self.high_db), 0.0)
        out = batch * (10.0 ** (db / 20.0)).to(batch.device, batch.dtype)[:, None, None]
        if self.limit:
            peak = out.abs().amax(dim=(1, 2), keepdim=True)
            out = torch.where(peak > 1.0, out / peak, out)
        return out


class Compress(_Augmentation):
    """A random downward compressor on examples picked with probability `prob` (RAVE: 0.8).

    Per picked example, a threshold is drawn uniformly in `threshold_db`
    (dBFS) and a ratio in `ratio`. The level is the RMS of `hop`-frame
    windows over all channels together (linked: the stereo image stays); a
    window `over` dB above the threshold is turned down by
    over * (1 - 1 / ratio) dB, so a steady level L ends at
    threshold + (L - threshold) / ratio. The gain in dB follows with a
    one-pole `attack` (seconds, while the reduction grows) and `release`
    (while it shrinks), and is interpolated linearly between windows.

    There is no make-up gain: audio below the threshold passes unchanged,
    nothing gets louder, so a compressed example never clips. What it
    teaches is RAVE's reason for it: timbre that holds at another dynamic
    range than the corpus's.
    """

    def __init__(self, sample_rate: int = 44100, prob: float = 0.8, threshold_db: tuple[float, float] = (-40.0, -10.0),
                 ratio: tuple[float, float] = (2.0, 8.0), attack: float = 0.01, release: float = 0.1, hop: int = 256,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        _check_probability("compress", prob)
        if threshold_db[0] > threshold_db[1] or not 1.0 <= ratio[0] <= ratio[1]:
            raise ConfigError(f"compress threshold {threshold_db} dB and ratio {ratio} must be (low, high) ranges, "
                              "ratios of at least 1")
        if attack <= 0 or release <= 0 or hop < 1:
            raise ConfigError(f"compress attack {attack} s, release {release} s and hop {hop} must be positive")
        self.prob, self.threshold_db, self.ratio, self.hop = prob, threshold_db, ratio, hop
        self._attack = float(torch.exp(torch.tensor(-hop / (attack * sample_rate))))  # per-window smoothing
        self._release = float(torch.exp(torch.tensor(-hop / (release * sample_rate))))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        count, _, frames = batch.shape
        chosen = self._chosen(count, self.prob)
        threshold = self._uniform(count, *self.threshold_db).to(batch.device)[:, None]
        slope = (1.0 - 1.0 / self._uniform(count, *self.ratio)).to(batch.device)[:, None]
        windows = -(-frames // self.hop)
        padded = F.pad(batch, (0, windows * self.hop - frames))
        power = padded.reshape(count, -1, windows, self.hop).square().mean(dim=(1, 3))
        level = 10.0 * torch.log10(power.clamp_min(1e-12))  # dBFS per window [count, windows]
        target = (threshold - level).clamp_max(0.0) * slope  # dB, <= 0
        gain = torch.empty_like(target)
        state = torch.zeros(count, device=batch.device, dtype=target.dtype)
        for window in range(windows):  # a few hundred steps per example of 131072 frames
            wanted = target[:, window]
            coefficient = torch.where(wanted < state, self._attack, self._release)
            state = coefficient * state + (1.0 - coefficient) * wanted
            gain[:, window] = state
        gain = torch.where(chosen.to(batch.device)[:, None], gain, 0.0)
        linear = 10.0 ** (gain / 20.0)
        curve = F.interpolate(linear[:, None], size=windows * self.hop, mode="linear", align_corners=False)
        return batch * curve[:, :, :frames].to(batch.dtype)


AUGMENTATIONS = {"compress": Compress, "gain": Gain, "mute": Mute}  # --augment NAME


class Augmentations:
    """Several augmentations applied in order; no names: the batch itself."""

    def __init__(self, steps: Sequence) -> None:
        self.steps = tuple(steps)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            batch = step(batch)
        return batch


def build_augmentations(names: Sequence[str], sample_rate: int, seed: int | None = None) -> Augmentations:
    """The augmentations `names` (with their documented defaults), each seeded seed + its position."""
    steps = []
    for position, name in enumerate(names):
        if name not in AUGMENTATIONS:
            raise ConfigError(f"unknown augmentation {name!r} (--augment); choose from {', '.join(AUGMENTATIONS)}")
        step_seed = None if seed is None else seed + position
        if name == "compress":
            steps.append(Compress(sample_rate, seed=step_seed))
        else:
            steps.append(AUGMENTATIONS[name](seed=step_seed))
    return Augmentations(steps)
