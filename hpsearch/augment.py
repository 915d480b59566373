"""Augmentation on the device: the second paper's classic ops on real images, DiffAugment on all D sees.

Both work on whole batches of float images in [-1, 1] (B, C, H, W) where they live, drawing
every random number from a `torch.Generator` the caller owns: the training run's RNG, whose
state is checkpointed, so the same seed gives the same batches, also across a resume.

**Classic** (`data.augment`, `ClassicAugment`): what the second paper did to its Pokémon
renders at load time — flips, rotations, skews, shifts, colour jitter — applied to the real
images only, each op per image with its probability. The geometric ops are one affine warp
(bilinear, reflected at the border); the colour ops are clamped to the value range. It makes
the data set look larger, but the generator can learn the augmentation (rotated digits)
when it is strong: that is what DiffAugment avoids.

**DiffAugment** (`train.diffaug`, `DiffAugment`; Zhao et al., 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): the same random transformation family applied
to every batch the discriminator sees, real and generated, inside the losses, and
differentiably, so the generator's gradient passes through it and G is not pushed to produce
augmented images. The ops follow the reference implementation: `color` (brightness ±0.5,
saturation ×[0, 2], contrast ×[0.5, 1.5]; not clamped, as there: D sees real and fake shifted
alike), `translation` (integer shifts up to 1/8 of the side, zero fill), `cutout` (a zeroed
square of half the side).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from hpsearch.config import DIFFAUG_NAMES, AugmentConfig, diffaug_ops

Augment = Callable[[torch.Tensor], torch.Tensor]


def _uniform(n: int, scale: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """n values uniform in [-scale, scale]."""
    return (torch.rand(n, device=device, generator=g) * 2.0 - 1.0) * scale


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """n Bernoulli(p) draws as 0./1. floats (always drawn, so the RNG stream does not depend on outcomes)."""
    return (torch.rand(n, device=device, generator=g) < p).float()


class ClassicAugment:
    """The classic ops of `data.augment` on a real batch (see the module docstring).

    Args:
        cfg: the strengths and probabilities.
        generator: the run's RNG, on the batch's device.
    """

    def __init__(self, cfg: AugmentConfig, generator: torch.Generator) -> None:
        self.cfg, self.g = cfg, generator
        self.geometric = cfg.rotate > 0 or cfg.shear > 0 or cfg.translate > 0
        self.color = cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0

    @property
    def enabled(self) -> bool:
        return self.cfg.flip > 0 or self.geometric or self.color

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c, g, n, device = self.cfg, self.g, x.shape[0], x.device
        if c.flip > 0:
            flip = _chance(n, c.flip, g, device).bool()
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.geometric:
            x = self._warp(x)
        if self.color:
            x = self._jitter(x)
        return x

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Rotation, shear and translation as one affine warp per image (identity where an op is not drawn)."""
        c, g, n, device = self.cfg, self.g, x.shape[0], x.device
        angle = _uniform(n, math.radians(c.rotate), g, device) * _chance(n, c.rotate_p, g, device)
        shear_on = _chance(n, c.shear_p, g, device)
        shx = torch.tan(_uniform(n, math.radians(c.shear), g, device)) * shear_on
        shy = torch.tan(_uniform(n, math.radians(c.shear), g, device)) * shear_on
        shift_on = _chance(n, c.translate_p, g, device)
        tx = _uniform(n, 2.0 * c.translate, g, device) * shift_on  # grid coordinates span 2 per side
        ty = _uniform(n, 2.0 * c.translate, g, device) * shift_on
        cos, sin = torch.cos(angle), torch.sin(angle)
        rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (n, 2, 2)
        shear = torch.stack([torch.stack([torch.ones_like(shx), shx], 1), torch.stack([shy, torch.ones_like(shy)], 1)],
                            1)
        theta = torch.cat([rotation @ shear, torch.stack([tx, ty], 1)[:, :, None]], 2)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        c, g, n, device = self.cfg, self.g, x.shape[0], x.device
        on = _chance(n, c.color_p, g, device)[:, None, None, None]
        shift = _uniform(n, 2.0 * c.brightness, g, device)[:, None, None, None]  # the range [-1, 1] spans 2
        contrast = 1.0 + _uniform(n, c.contrast, g, device)[:, None, None, None]
        saturation = 1.0 + _uniform(n, c.saturation, g, device)[:, None, None, None]
        y = x + shift
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        y = (y - mean) * contrast + mean
        if x.shape[1] == 3:
            grey = y.mean(dim=1, keepdim=True)
            y = (y - grey) * saturation + grey
        return torch.where(on.bool(), y.clamp(-1.0, 1.0), x)


# --------------------------------------------------------------------------- DiffAugment


def _color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    x = x + (torch.rand(n, 1, 1, 1, device=device, generator=g, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=device, generator=g, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=device, generator=g, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=g)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=g)
    batch, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                   torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + dx + 1, 0, h + 1)
    gy = torch.clamp(gy + dy + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # a zero border that out-of-range shifts read
    return padded.permute(0, 2, 3, 1)[batch, gx, gy].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=g)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=g)
    batch, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                   torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[batch, gx, gy] = 0
    return x * mask[:, None]


DIFFAUG_OPS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "color": _color, "translation": _translation, "cutout": _cutout}
assert tuple(DIFFAUG_OPS) == DIFFAUG_NAMES


class DiffAugment:
    """The DiffAugment ops of a policy, in order, on any batch D sees (differentiable).

    Args:
        policy: e.g. "color,translation,cutout".
        generator: the run's RNG, on the batch's device.
    """

    def __init__(self, policy: str, generator: torch.Generator) -> None:
        self.ops, self.g = [DIFFAUG_OPS[op] for op in diffaug_ops(policy)], generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x, self.g)
        return x
