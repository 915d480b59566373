"""Evaluation metrics: FID and KID (domain or Inception features), overall and per class, precision, recall,
density, coverage, conditional accuracy, MS-SSIM, gradient norms."""

from __future__ import annotations

from hpsearch.metrics.evaluator import (
    OBJECTIVES,
    Evaluator,
    check_features,
    check_metrics,
    density_over_coverage,
)
from hpsearch.metrics.grad_norms import GradNormTracker, grad_norm

__all__ = ["OBJECTIVES", "Evaluator", "check_features", "check_metrics", "density_over_coverage", "GradNormTracker",
           "grad_norm"]
