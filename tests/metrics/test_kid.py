"""KID: torchmetrics' estimate on precomputed features equals the unbiased MMD² computed directly."""

from __future__ import annotations

import pytest
import torch

from hpsearch.metrics.kid import FeatureKID


def unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Bińkowski et al.'s unbiased estimator with k(a, b) = (a·b / F + 1)³, written out term by term."""
    m, n, f = len(x), len(y), x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / f + 1) ** 3, ((y @ y.T) / f + 1) ** 3, ((x @ y.T) / f + 1) ** 3
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def _features(seed: int, n: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_kid_on_whole_sets_is_the_unbiased_mmd2_within_1e6() -> None:
    real, fake = _features(0, 200), _features(1, 200, shift=0.3)
    expected = unbiased_mmd2(real, fake)
    assert expected > 0
    assert FeatureKID(16, subsets=5, subset_size=None).distance(real, fake, seed=0) == pytest.approx(expected, rel=1e-6)


def test_kid_on_subsets_is_the_mean_unbiased_mmd2_of_the_seeded_subsets() -> None:
    """More real than generated features: subsets of the smaller size, drawn from the seed."""
    real, fake = _features(2, 300), _features(3, 120, shift=0.3)
    gen = torch.Generator().manual_seed(7)
    expected = sum(unbiased_mmd2(real[torch.randperm(300, generator=gen)[:50]],
                                 fake[torch.randperm(120, generator=gen)[:50]]) for _ in range(4)) / 4
    kid = FeatureKID(16, subsets=4, subset_size=50)
    assert kid.distance(real, fake, seed=7) == pytest.approx(expected, rel=1e-6)
    assert kid.distance(real, fake, seed=7) == kid.distance(real, fake, seed=7) != kid.distance(real, fake, seed=8)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    same = [FeatureKID(16, 10, None).distance(_features(2 * s, 100), _features(2 * s + 1, 100), seed=s)
            for s in range(20)]
    assert torch.equal(torch.get_rng_state(), before)  # a training run's random stream is not disturbed
    mean = sum(same) / len(same)
    sd = (sum((v - mean) ** 2 for v in same) / (len(same) - 1)) ** 0.5
    assert min(same) < 0 < max(same) and abs(mean) < 3 * sd / len(same) ** 0.5  # unbiased: centred on 0


def test_a_subset_larger_than_a_set_is_refused() -> None:
    with pytest.raises(ValueError, match="subset_size"):
        FeatureKID(16, 2, 150).distance(_features(0, 200), _features(1, 100), seed=0)
