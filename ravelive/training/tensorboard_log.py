"""What a run shows in TensorBoard: loss scalars, audio examples, and input/reconstruction spectrograms.

`RunLog` wraps `torch.utils.tensorboard.SummaryWriter` (event files under
RUN/logs; `tensorboard --logdir RUN/logs` shows them). The spectrogram is
drawn with numpy alone (no matplotlib): log magnitudes in dB over an 80 dB
range, grey levels, low frequencies at the bottom, the input on the left and
its reconstruction on the right with a white bar between them, so a glance
shows which partials the model misses or invents.
"""

from pathlib import Path

import numpy as np
import torch

DYNAMIC_RANGE_DB = 80.0  # quieter than this below the loudest bin is black
WINDOW = 1024


def spectrogram_db(audio: torch.Tensor, window: int = WINDOW) -> np.ndarray:
    """Magnitude of mono `audio` [n] in dB, [bins, frames], low bins first."""
    stft = torch.stft(
        audio.detach().float().cpu(), window, hop_length=window // 4, window=torch.hann_window(window),
        return_complex=True,
    )
    return 20 * np.log10(stft.abs().numpy() + 1e-7)


def spectrogram_image(target: torch.Tensor, estimate: torch.Tensor, window: int = WINDOW) -> np.ndarray:
    """uint8 [height, width, 3] image: target's spectrogram | estimate's, on the target's dB scale."""
    left, right = spectrogram_db(target, window), spectrogram_db(estimate, window)
    top = left.max()
    bar = np.full((left.shape[0], 2), top)  # white: the loudest level
    picture = np.concatenate([left, bar, right], 1)
    grey = np.clip((picture - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0, 1)
    pixels = (255 * grey[::-1]).astype(np.uint8)  # row 0 is the top of the image: the highest frequency
    return np.repeat(pixels[:, :, None], 3, 2)


class RunLog:
    """TensorBoard event files of one run (rank 0 only writes them)."""

    def __init__(self, run: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events a crashed run wrote after its last checkpoint are hidden on resume
        self.writer = SummaryWriter(log_dir=str(Path(run) / "logs"), purge_step=start_step or None)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def example(self, target: torch.Tensor, estimate: torch.Tensor, sample_rate: int, step: int) -> None:
        """One example [n] and its reconstruction [n], as sound and as a spectrogram image."""
        target, estimate = target.detach().float().cpu(), estimate.detach().float().cpu()
        self.writer.add_audio("audio/input", target.clamp(-1, 1)[None], step, sample_rate=sample_rate)
        self.writer.add_audio("audio/reconstruction", estimate.clamp(-1, 1)[None], step, sample_rate=sample_rate)
        self.writer.add_image(
            "spectrogram/input | reconstruction", spectrogram_image(target, estimate), step, dataformats="HWC"
        )

    def close(self) -> None:
        self.writer.close()
