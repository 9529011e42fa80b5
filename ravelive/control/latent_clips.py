"""Latent sequences a client can play by name: `/ravelive/latent/play NAME` from `serve --latents-dir DIR`.

A sequence is `DIR/NAME.npy`: float32 or float64 [dims, frames] in the model's
own latent scale (what `ravelive generate-latents` writes beside each wav).
Only names in that directory are read (control/named_files.py refuses paths),
with numpy's pickle-free reader, and only files no larger than MAX_BYTES; the
array is checked (two dimensions, the playing model's latent size, finite)
before it is handed to the engine's latent loop.
"""

from pathlib import Path

import numpy as np

from ravelive.control.named_files import NamedFiles
from ravelive.errors import ConfigError, ParameterError

SUFFIX = ".npy"
MAX_BYTES = 64 << 20  # 64 MiB: an hour of a 128-dimensional latent at 21.5 frames/s is 40 MiB


class LatentClips:
    """The `.npy` latent sequences of one directory."""

    def __init__(self, directory: Path | str) -> None:
        self.files = NamedFiles(directory, SUFFIX, "latent sequence")

    def names(self) -> list[str]:
        return self.files.names()

    def load(self, name: object, dims: int) -> np.ndarray:
        """Sequence `name` as float32 [dims, frames]; ConfigError / ParameterError naming the fault and the fix."""
        path = self.files.existing(name)
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"latent sequence {path.name} is over {MAX_BYTES >> 20} MiB; play a shorter one")
        try:
            frames = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ConfigError(f"latent sequence {path.name} is not a numpy array file ({error}); "
                              f"write it with numpy.save") from None
        if frames.ndim != 2 or frames.shape[0] != dims or frames.shape[1] < 1 or frames.dtype.kind != "f":
            raise ParameterError(f"latent sequence {path.name} holds {frames.dtype} {list(frames.shape)}; the playing "
                                 f"model takes float [{dims}, frames]: generate it with this model")
        if not np.isfinite(frames).all():
            raise ParameterError(f"latent sequence {path.name} holds NaN or Inf values; generate it again")
        return np.ascontiguousarray(frames, dtype=np.float32)
