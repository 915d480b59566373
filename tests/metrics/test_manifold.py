"""Precision, recall, density and coverage: the authors' `prdc` package and cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpsearch.metrics.manifold import manifold


def _modes(n: int, modes: list[int], seed: int, dim: int = 8) -> torch.Tensor:
    """n points spread evenly over the given modes of 10 far-apart Gaussian clusters."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.zeros(10, dim)
    centres[:, 0] = 20.0 * torch.arange(10)  # 20 SDs apart: no ball of one mode reaches another
    which = torch.tensor(modes).repeat(n // len(modes) + 1)[:n]
    return centres[which] + torch.randn(n, dim, generator=gen)


@pytest.mark.parametrize("seed", range(5))
def test_the_same_four_numbers_as_prdc(seed: int) -> None:
    prdc = pytest.importorskip("prdc")  # a dev dependency: the reference implementation
    real, fake = _modes(300, list(range(10)), seed), _modes(300, list(range(7)), seed + 100) * 1.05
    for k in (3, 5):
        ours = manifold(real, fake, k)
        with np.errstate(all="ignore"):
            theirs = prdc.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=k)
        for name in ("precision", "recall", "density", "coverage"):
            assert getattr(ours, name) == pytest.approx(float(theirs[name]), abs=2 / 300), (name, k)


def test_identical_sets_have_precision_recall_and_coverage_1() -> None:
    real = _modes(200, list(range(10)), 0)
    same = manifold(real, real.clone(), 3)
    assert same.precision == same.recall == same.coverage == 1.0


def test_half_the_modes_keeps_precision_and_halves_recall_and_coverage() -> None:
    """Precision and recall the right way round (torch-fidelity before 0.4.0 swapped them)."""
    real, half = _modes(1000, list(range(10)), 0, dim=2), _modes(1000, [0, 2, 4, 6, 8], 1, dim=2)
    same = manifold(real, _modes(1000, list(range(10)), 2, dim=2), 3)  # one distribution, two samples
    assert same.precision > 0.9 and same.recall > 0.9
    assert same.coverage == pytest.approx(1 - 2 ** -3, abs=0.03)  # Naeem et al.: 1 - 1/2^k when M = N
    result = manifold(real, half, 3)
    assert result.precision > 0.9
    assert result.recall == pytest.approx(0.5, abs=0.05) and result.coverage == pytest.approx(0.5, abs=0.05)


def test_outliers_have_density_and_precision_near_0() -> None:
    real = _modes(500, list(range(10)), 0)
    outliers = _modes(500, list(range(10)), 1) + 15 * torch.randn(500, 8, generator=torch.Generator().manual_seed(3))
    result = manifold(real, outliers, 3)
    assert result.density < 0.05 and result.precision < 0.05 and result.coverage < 0.1


def test_too_few_samples_for_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k=3 need at least 4 samples a side; got 3 real"):
        manifold(torch.randn(3, 2), torch.randn(10, 2), 3)
    four = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    smallest = manifold(four, four.clone(), 3)  # k + 1 = 4 a side is enough: each point's 3 others are its neighbours
    assert smallest.precision == smallest.recall == smallest.coverage == 1.0
