"""Fitting the latent PCA an export keeps: the encoder's latent means over a run's dataset, in constant memory.

`fit_latent_pca(model, dataset)` encodes at most `MAX_EXAMPLES` examples,
spread evenly over the dataset, with the offline model (`encode`: the VAE's
mean), and accumulates per latent frame only the sum and the sum of outer
products (float64), so memory stays one [latent, latent] matrix whatever the
number of examples. From them: the mean, the covariance, and its
eigendecomposition (`torch.linalg.eigh`): the principal directions by
decreasing variance and the cumulative share of variance, the fidelity curve
`LatentPCA.with_fidelity` chooses the kept dims from.

RAVE 2.3.1 fits the same thing (sklearn's PCA on the validation latents at
the end of each validation epoch, kept in the model's buffers); fitting at
export time needs no validation split and no training-time state, and the
examples are drawn with a fixed seed, so the same run and dataset always give
the same axes (each direction's largest entry made positive) and the same
exported file.
"""

from collections.abc import Callable

import torch

from ravelive.models.rave.latent_pca import LatentPCA
from ravelive.models.rave.model import RaveModel

MAX_EXAMPLES = 256  # examples encoded: tens of thousands of latent frames at RAVE's example length, a stable fit
BATCH_SIZE = 8  # examples per encoder call
SEED = 0  # the dataset's random crops during the fit: the same crops on every export


def fit_latent_pca(
    model: RaveModel,
    dataset: torch.utils.data.Dataset,
    *,
    max_examples: int = MAX_EXAMPLES,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> LatentPCA:
    """Principal axes of `model.encode` (offline) over `dataset` ([1, n] examples); `on_progress(examples)` per batch."""
    count = min(len(dataset), max_examples)
    if count == 0:
        raise ValueError("a latent PCA needs at least one example")
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
    dims = model.latent_dims
    sums = torch.zeros(dims, dtype=torch.float64)
    products = torch.zeros(dims, dims, dtype=torch.float64)
    frames = 0
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(SEED)
        for start in range(0, count, batch_size):
            batch = torch.stack([dataset[index] for index in indices[start : start + batch_size]])
            latent = model.encode(batch)  # [b, dims, t]
            flat = latent.transpose(1, 2).reshape(-1, dims).double()
            sums += flat.sum(0)
            products += flat.T @ flat
            frames += flat.shape[0]
            if on_progress is not None:
                on_progress(batch.shape[0])
    return principal_axes(sums, products, frames, examples=count)


def principal_axes(sums: torch.Tensor, products: torch.Tensor, frames: int, *, examples: int) -> LatentPCA:
    """The PCA of `frames` latent vectors given their sum [d] and sum of outer products [d, d]."""
    mean = sums / frames
    covariance = products / frames - torch.outer(mean, mean)
    variances, vectors = torch.linalg.eigh((covariance + covariance.T) / 2)  # ascending
    variances, components = variances.flip(0).clamp(min=0), vectors.flip(1).T
    largest = components.abs().argmax(1, keepdim=True)
    components = components * torch.sign(components.gather(1, largest))  # a sign per axis, fixed
    total = variances.sum()
    # a latent that never moves has no informative direction: one dim reaches "all" of nothing
    fidelity = variances.cumsum(0) / total if total > 0 else torch.ones(len(variances), dtype=torch.float64)
    return LatentPCA(mean.float(), components.float(), tuple(fidelity.tolist()), examples)
