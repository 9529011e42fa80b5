"""How well a model reconstructs material: the training loss's spectral distance, on a file's own output.

    distance = reconstruction_distance(audio, streamed_reconstruction(NNModel.load("model.ts"), audio))

`streamed_reconstruction` plays `audio` through a streaming export's
`forward` and takes back its delay, so the result lines up with the input
sample for sample; `reconstruction_distance` is the full-band multi-scale
spectral distance the training minimises (`losses.SpectralDistance`, the
same window sizes): lower is closer, and 0 is identity. Measured on material
the model never trained on, it says whether training generalised.
"""

import numpy as np
import torch

from ravelive.errors import ModelRuntimeError
from ravelive.models.nn_model import NNModel
from ravelive.training.config import TrainConfig
from ravelive.training.losses import SpectralDistance


def streamed_reconstruction(model: NNModel, audio: np.ndarray) -> np.ndarray:
    """`forward` of a fresh stream on mono `audio`, its delay taken back: the same length as `audio`."""
    delay = model.delay("forward")
    block = model.minimum_block()
    length = -(-(len(audio) + delay) // block) * block  # the input, then zeros until its last sample is out
    x = torch.zeros(1, 1, length)
    x[0, 0, : len(audio)] = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    if not model.reset_state():
        raise ModelRuntimeError(f"{model.path}: has no reset(); load it again for a fresh stream before measuring it")
    with torch.inference_mode():
        y = model("forward", x)
    return y[0, 0, delay : delay + len(audio)].numpy()


def reconstruction_distance(audio: np.ndarray, reconstruction: np.ndarray,
                            scales: tuple[int, ...] = TrainConfig.stft_scales) -> float:
    """Multi-scale spectral distance of two mono signals of one length (the training's full-band term)."""
    distance = SpectralDistance(scales)
    as_tensor = lambda signal: torch.as_tensor(np.asarray(signal, dtype=np.float32))[None, None]  # noqa: E731
    with torch.inference_mode():
        return float(distance(as_tensor(audio), as_tensor(reconstruction)))
