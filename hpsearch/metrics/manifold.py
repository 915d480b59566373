"""Precision, recall, density and coverage of generated features: the `prdc` package's definitions, in torch.

Precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", NeurIPS) estimate each distribution's manifold as the union of balls around its
samples reaching their k-th nearest neighbour: precision is the share of generated samples inside the
real manifold ("draws good images"), recall the share of real samples inside the generated one
("misses no part of the data"). Density and coverage (Naeem et al. 2020, "Reliable Fidelity and
Diversity Metrics for Generative Models", ICML) use only the real balls, which outliers cannot
inflate: density counts how many real balls hold each generated sample (1 on average when the two
distributions are the same), coverage is the share of real balls that hold at least one generated
sample. A collapsed generator keeps its precision and loses recall and coverage.

These are the definitions of `prdc` (clovaai/prdc, Naeem et al.'s reference implementation), written
in torch so that they run on the training device: `prdc` itself spent 1.5 s of an evaluation on 2 CPU
cores (profiled on digits, 1,000 images) starting joblib threads for its 33 small distance matrices,
about five times the whole evaluation's 0.3 s (benchmarks/README.md, eval_cost.py). tests/metrics/test_manifold.py
checks this code against `prdc` on random features and on cases with known answers (precision and
recall the right way round included). hpsearch passes equally many real and generated features, as
`prdc`'s authors do: coverage depends on the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Manifold:
    """Precision, recall, density and coverage of one generated feature set against one real set."""

    precision: float
    recall: float
    density: float
    coverage: float


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)), computed directly (no |a|² + |b|² - 2ab cancellation)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


@torch.no_grad()
def manifold(real: torch.Tensor, fake: torch.Tensor, k: int) -> Manifold:
    """The four metrics of `fake` (M, F) against `real` (N, F) with k-nearest-neighbour balls.

    Raises:
        ValueError: fewer than k + 1 samples on a side (a sample's k-th neighbour other than itself is undefined).
    """
    if min(len(real), len(fake)) < k + 1:
        raise ValueError(f"precision/recall/density/coverage with k={k} need at least {k + 1} samples a side; "
                         f"got {len(real)} real and {len(fake)} generated")
    real, fake = real.float(), fake.float()
    radius_real = _distances(real, real).kthvalue(k + 1, dim=1).values  # (N,) the k-th neighbour but itself
    radius_fake = _distances(fake, fake).kthvalue(k + 1, dim=1).values  # (M,)
    between = _distances(real, fake)  # (N, M)
    in_real_ball = between < radius_real[:, None]  # generated j inside real i's ball
    return Manifold(precision=float(in_real_ball.any(0).float().mean()),
                    recall=float((between < radius_fake[None, :]).any(1).float().mean()),
                    density=float(in_real_ball.sum(0).float().mean() / k),
                    coverage=float((between.min(1).values < radius_real).float().mean()))
