"""The latent PCA fit: principal axes and fidelity from streamed moments, constant memory, deterministic."""

import math

import pytest
import torch

from ravelive.models.rave import RaveModel, resolve_config
from ravelive.training.latent_fit import fit_latent_pca, principal_axes


def moments(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    z = z.double()
    return z.sum(0), z.T @ z, z.shape[0]


def test_the_axes_and_the_curve_of_a_known_gaussian_come_back():
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=generator, dtype=torch.float64))
    scales = torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    mean = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    z = (torch.randn(200_000, 4, generator=generator, dtype=torch.float64) * scales) @ rotation.T + mean
    pca = principal_axes(*moments(z), examples=1)
    torch.testing.assert_close(pca.mean.double(), mean, rtol=0, atol=0.02)
    alignment = (pca.components.double() @ rotation).abs()  # |cos| between found and true axes, in order
    torch.testing.assert_close(alignment.diagonal(), torch.ones(4, dtype=torch.float64), rtol=0, atol=0.01)
    expected = (scales**2).cumsum(0) / (scales**2).sum()
    assert pca.fidelity == pytest.approx(expected.tolist(), abs=0.005)
    assert pca.with_fidelity(0.95).kept == 3 and pca.with_fidelity(0.9).kept == 2


def test_every_axis_points_the_same_way_on_every_fit():
    z = torch.randn(5000, 3, generator=torch.Generator().manual_seed(1)) * torch.tensor([3.0, 2.0, 1.0])
    first, flipped = principal_axes(*moments(z), examples=1), principal_axes(*moments(-z), examples=1)
    for axes in (first.components, flipped.components):
        largest = axes.abs().argmax(1, keepdim=True)
        assert (axes.gather(1, largest) > 0).all()
    torch.testing.assert_close(first.components, flipped.components, rtol=0, atol=1e-5)


def test_a_latent_that_never_moves_keeps_one_dim():
    pca = principal_axes(*moments(torch.ones(100, 3)), examples=1)
    assert pca.fidelity == (1.0, 1.0, 1.0) and pca.with_fidelity(0.95).kept == 1


def test_the_fit_encodes_at_most_max_examples_and_is_deterministic():
    torch.manual_seed(2)
    model = RaveModel(resolve_config(["tiny"]))
    examples = [0.1 * torch.randn(1, 1024) for _ in range(10)]
    seen = []
    pca = fit_latent_pca(model, examples, max_examples=4, batch_size=3, on_progress=seen.append)
    assert pca.examples == 4 and seen == [3, 1]
    assert len(pca.fidelity) == 8 and pca.fidelity[-1] == pytest.approx(1.0)
    assert all(math.isfinite(v) for v in pca.fidelity)
    again = fit_latent_pca(model, examples, max_examples=4, batch_size=3)
    torch.testing.assert_close(again.components, pca.components, rtol=0, atol=0)
