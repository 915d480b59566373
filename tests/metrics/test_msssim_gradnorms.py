"""MS-SSIM diversity and gradient-norm tracking."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hpsearch.data import ImageDataset
from hpsearch.metrics.grad_norms import GradNormTracker, grad_norm
from hpsearch.metrics.msssim import class_msssim, pair_msssim


@pytest.mark.parametrize("size", [16, 32, 64])
def test_msssim_of_identical_images_is_one(size: int) -> None:
    images = torch.randint(0, 256, (6, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pair_msssim(images, images), torch.ones(6))
    labels = torch.zeros(6, dtype=torch.long)
    same = images[:1].expand(6, -1, -1, -1)
    assert class_msssim(same, labels, pairs_per_class=10) == pytest.approx(1.0)


def test_collapsed_batch_scores_higher_than_diverse(digits16: ImageDataset) -> None:
    labels = digits16.labels
    diverse_idx = torch.cat([(labels == c).nonzero()[:20, 0] for c in range(10)])
    diverse, y = digits16.images[diverse_idx], labels[diverse_idx]
    # Collapse: every class repeats its first image with a little pixel noise.
    first = torch.stack([digits16.images[(labels == c).nonzero()[0, 0]] for c in range(10)])
    noise = torch.randint(-8, 9, diverse.shape, generator=torch.Generator().manual_seed(0))
    collapsed = (first.repeat_interleave(20, dim=0).int() + noise).clamp(0, 255).to(torch.uint8)
    d, c = class_msssim(diverse, y, 50), class_msssim(collapsed, y, 50)
    assert c > d + 0.2, (c, d)


def test_grad_norm_equals_direct_vector_norm() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model(torch.randn(5, 1, 8, 8)).square().sum().backward()
    direct = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grad_norm(model), direct)


def test_tracker_reports_mean_and_max_since_last_flush() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    tracker = GradNormTracker(torch.device("cpu"))
    seen = []
    for scale in (1.0, 3.0, 2.0):
        model.zero_grad()
        (scale * model(torch.ones(1, 3))).sum().backward()
        seen.append(float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))))
        tracker.record("g", model)
    tracker.record("d", model)
    out = tracker.flush()
    assert out["grad_norm_g_mean"] == pytest.approx(sum(seen) / 3)
    assert out["grad_norm_g_max"] == pytest.approx(max(seen))
    assert out["grad_norm_d_max"] == pytest.approx(seen[-1])
    assert tracker.flush() == {}  # nothing recorded since
