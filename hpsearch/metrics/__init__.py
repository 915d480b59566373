"""Evaluation metrics: FID (domain or Inception features), class FID, accuracy, MS-SSIM, gradient norms."""

from __future__ import annotations

from hpsearch.metrics.evaluator import Evaluator, check_features, check_metrics
from hpsearch.metrics.grad_norms import GradNormTracker, grad_norm

__all__ = ["Evaluator", "check_features", "check_metrics", "GradNormTracker", "grad_norm"]
