"""FID: torchmetrics on precomputed features vs. SciPy, and its behaviour on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from hpsearch.checkpoint import save_checkpoint
from hpsearch.metrics.domain import LoadedClassifier
from hpsearch.metrics.fid import FeatureFID, load_reference, save_reference


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of Heusel et al., written independently with NumPy/SciPy."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@pytest.mark.parametrize("shift", [0.0, 0.3, 2.0])
def test_fid_matches_scipy(shift: float) -> None:
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    a = rng.normal(size=(400, 16)) @ mix
    b = rng.normal(size=(300, 16)) @ (mix + shift * rng.normal(size=(16, 16))) + shift
    fid = FeatureFID(16, torch.device("cpu"))
    real = fid.moments(torch.from_numpy(a).float())
    assert fid.distance(real, torch.from_numpy(b).float()) == pytest.approx(scipy_fid(a.astype(np.float32),
                                                                                    b.astype(np.float32)), rel=1e-4)


def test_a_reference_file_without_features_or_with_parts_that_disagree_is_refused(tmp_path: Path) -> None:
    """Caches written before KID and coverage (moments only), or damaged: the evaluator rebuilds them."""
    feats, labels = torch.randn(60, 8), torch.arange(60) % 3
    stats = FeatureFID(8, torch.device("cpu")).reference(feats, labels, 3)
    save_checkpoint(tmp_path / "old.pt", {"overall": stats.overall.to_dict(),
                                          "per_class": [m.to_dict() for m in stats.per_class]})
    with pytest.raises(KeyError, match="features"):
        load_reference(tmp_path / "old.pt", torch.device("cpu"))
    stats.features = feats[:50]
    save_reference(tmp_path / "short.pt", stats)
    with pytest.raises(ValueError, match=r"features \(50, 8\) and labels \(60,\) do not match 60 images"):
        load_reference(tmp_path / "short.pt", torch.device("cpu"))


def test_reference_stats_round_trip_through_the_cache(tmp_path: Path) -> None:
    feats, labels = torch.randn(60, 8), torch.arange(60) % 3
    fid = FeatureFID(8, torch.device("cpu"))
    stats = fid.reference(feats, labels, 3)
    assert [m.count for m in stats.per_class] == [20, 20, 20] and stats.overall.count == 60
    save_reference(tmp_path / "ref.pt", stats)
    again = load_reference(tmp_path / "ref.pt", torch.device("cpu"))
    fake = torch.randn(30, 8)
    assert fid.distance(again.per_class[1], fake) == fid.distance(stats.per_class[1], fake)
    expected = scipy_fid(feats[labels == 1].numpy(), fake.numpy())
    assert fid.distance(again.per_class[1], fake) == pytest.approx(expected, rel=1e-4)


def test_fid_on_digits_features_halves_noise_and_blending(digits16, digits_classifier: LoadedClassifier) -> None:
    model = digits_classifier.model
    with torch.no_grad():
        images = digits16.images
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
        half_a, half_b = images[order[:900]], images[order[900:]]
        # Gaussian noise around the data's mean brightness, blended as (1 - α)·X + α·N at the
        # disturbance levels of Heusel et al. (2017), where FID must grow with α.
        gen = torch.Generator().manual_seed(2)
        noise = (torch.randn(half_b.shape, generator=gen) * 64 + images.float().mean()).clamp(0, 255)
        fid = FeatureFID(model.num_features, torch.device("cpu"))
        real = fid.moments(model(half_a))
        halves = fid.distance(real, model(half_b))
        versus_noise = fid.distance(real, model(noise.round().to(torch.uint8)))
        blends = [fid.distance(real, model(((1 - a) * half_b.float() + a * noise).round().to(torch.uint8)))
                  for a in (0.0, 0.25, 0.5, 0.75)]
    assert halves < 0.05 * versus_noise, (halves, versus_noise)
    assert all(x < y for x, y in zip(blends, blends[1:], strict=False)), blends
