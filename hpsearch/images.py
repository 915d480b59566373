"""The few image helpers needed without torchvision: uint8 conversion and PNG grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hpsearch.io import atomic_write


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any float dtype) → uint8 in [0, 255], same shape."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def make_grid(images: torch.Tensor, ncol: int, pad: int = 1) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) into rows of `ncol` → (rows·(H+pad)+pad, …, C) array."""
    n, c, h, w = images.shape
    rows = (n + ncol - 1) // ncol
    grid = np.zeros((rows * (h + pad) + pad, ncol * (w + pad) + pad, c), dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = arr[i]
    return grid


def save_grid(images: torch.Tensor, ncol: int, path: Path, scale: int = 1) -> None:
    """Write uint8 images (N, C, H, W) as a PNG grid, optionally upscaled (nearest) for viewing."""
    grid = make_grid(images, ncol)
    img = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    atomic_write(path, lambda fh: img.save(fh, format="PNG"))
