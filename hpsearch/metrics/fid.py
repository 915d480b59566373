"""Fréchet distances with torchmetrics on precomputed features, and cached real statistics.

Features are extracted once per image; the overall FID and every per-class FID are then
torchmetrics `FrechetInceptionDistance` computations on those features (its feature
extractor is the identity), with the real side loaded from reference statistics that are
computed once per dataset × extractor × sample count and shared through a disk cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from hpsearch.checkpoint import load_checkpoint, save_checkpoint


class Precomputed(nn.Module):
    """Identity "extractor": the FID and KID metrics receive features that were extracted already."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@dataclass
class Moments:
    """Sufficient statistics of a feature set, as torchmetrics accumulates them."""

    total: torch.Tensor  # (F,) float64 sum of features
    outer: torch.Tensor  # (F, F) float64 sum of outer products
    count: int

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total.cpu(), "outer": self.outer.cpu(), "count": self.count}

    @classmethod
    def from_dict(cls, d: dict[str, Any], device: torch.device) -> Moments:
        return cls(d["total"].to(device), d["outer"].to(device), int(d["count"]))


@dataclass
class ReferenceStats:
    """Real-image moments overall and per class (FID), and the features themselves (KID, coverage…)."""

    overall: Moments
    per_class: list[Moments]
    features: torch.Tensor  # (N, F) float32, the real images' features in reference-pick order
    labels: torch.Tensor  # (N,) int64

    def of_class(self, c: int) -> torch.Tensor:
        """The features of class `c`'s real images, (N_c, F)."""
        return self.features[self.labels == c]


class FeatureFID:
    """FID between feature sets, computed by torchmetrics' FrechetInceptionDistance.

    Args:
        num_features: feature dimension F.
        device: where the (F, F) accumulators live (the training device).
    """

    def __init__(self, num_features: int, device: torch.device) -> None:
        self.metric = FrechetInceptionDistance(feature=Precomputed(num_features), reset_real_features=False)
        self.metric.to(device)

    def moments(self, features: torch.Tensor) -> Moments:
        """Moments of features (N, F), accumulated the way the metric does."""
        self.metric.reset()
        self.metric.update(features, real=False)
        m = self.metric
        return Moments(m.fake_features_sum.clone(), m.fake_features_cov_sum.clone(),
                       int(m.fake_features_num_samples))

    def distance(self, real: Moments, fake_features: torch.Tensor) -> float:
        """FID of `fake_features` (N, F) against the real moments."""
        m = self.metric
        m.reset()
        m.real_features_sum, m.real_features_cov_sum = real.total.clone(), real.outer.clone()
        m.real_features_num_samples = torch.tensor(real.count, device=real.total.device)
        m.update(fake_features, real=False)
        return float(m.compute())

    def reference(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> ReferenceStats:
        """Reference statistics of real features (N, F) with labels (N,)."""
        per_class = [self.moments(features[labels == c]) for c in range(num_classes)]
        return ReferenceStats(self.moments(features), per_class, features.float(), labels.long())


def save_reference(path: Path, stats: ReferenceStats) -> None:
    """Cache reference statistics (atomic, loadable with weights_only)."""
    save_checkpoint(path, {"overall": stats.overall.to_dict(), "per_class": [m.to_dict() for m in stats.per_class],
                           "features": stats.features.cpu(), "labels": stats.labels.cpu()})


def load_reference(path: Path, device: torch.device) -> ReferenceStats:
    """Read reference statistics written by `save_reference`.

    Raises:
        KeyError, ValueError: a file from before the features were kept, or whose parts disagree (the
            evaluator then computes it again).
    """
    payload = load_checkpoint(path)
    stats = ReferenceStats(Moments.from_dict(payload["overall"], device),
                           [Moments.from_dict(m, device) for m in payload["per_class"]],
                           payload["features"].to(device), payload["labels"].to(device))
    n, f = stats.overall.count, stats.overall.total.shape[0]
    if stats.features.shape != (n, f) or stats.labels.shape != (n,) or len(stats.per_class) <= int(stats.labels.max()):
        raise ValueError(f"features {tuple(stats.features.shape)} and labels {tuple(stats.labels.shape)} do not "
                         f"match {n} images of {f} features in {len(stats.per_class)} classes")
    return stats
