"""MS-SSIM between generated images of the same class: high means low diversity (mode collapse)."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

# The standard MS-SSIM scale weights (Wang et al., 2003); small images use the first few.
_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# (gaussian sigma, number of scales) per image size. torchmetrics sizes the gaussian window
# from sigma (k = 2·int(3.5σ + 0.5) + 1: 3, 5, 7 here), and the coarsest scale must still hold
# the window: (k - 1) · 2^(scales - 1) < size.
_SCALES: dict[int, tuple[float, int]] = {16: (0.4, 3), 32: (0.6, 3), 64: (0.85, 4)}


def msssim_settings(size: int) -> tuple[float, tuple[float, ...]]:
    """Gaussian sigma and renormalised scale weights for square images of side `size`."""
    sigma, scales = _SCALES.get(size, (1.5, 5))
    betas = _BETAS[:scales]
    return sigma, tuple(b / sum(betas) for b in betas)


def pair_msssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair (a[i], b[i]); uint8 images (P, C, H, W) → (P,) in [0, 1]."""
    sigma, betas = msssim_settings(a.shape[-1])
    x, y = a.float() / 255.0, b.float() / 255.0
    kernel = 2 * int(3.5 * sigma + 0.5) + 1  # the window torchmetrics uses for this sigma
    return ms_ssim(x, y, kernel_size=kernel, sigma=sigma, betas=betas, data_range=1.0, reduction="none",
                   normalize="relu")


def class_msssim(images: torch.Tensor, labels: torch.Tensor, pairs_per_class: int, seed: int = 0) -> float:
    """Mean MS-SSIM over random same-class pairs of distinct images, averaged over classes.

    Args:
        images: uint8 (N, C, H, W) generated images.
        labels: (N,) their classes.
        pairs_per_class: random pairs of two distinct images drawn per class.
        seed: makes the pairs reproducible.
    """
    rng = torch.Generator().manual_seed(seed)
    scores = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().squeeze(1).cpu()
        n = idx.numel()
        if n < 2:
            continue
        i = torch.randint(n, (pairs_per_class,), generator=rng)
        j = (i + torch.randint(1, n, (pairs_per_class,), generator=rng)) % n  # never i itself
        a, b = images[idx[i].to(images.device)], images[idx[j].to(images.device)]
        scores.append(pair_msssim(a, b).mean())
    if not scores:
        raise ValueError("MS-SSIM needs at least two images of one class")
    return float(torch.stack(scores).mean())
