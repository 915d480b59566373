"""Discriminators: the Table II hypermodel with any conditional head."""

from __future__ import annotations

import math

import torch
from torch import nn

from hpsearch.config import ModelConfig, num_blocks, per_layer
from hpsearch.models.conditioning import D_CONDITIONINGS, DOutput
from hpsearch.models.layers import SelfAttention, down_conv, scaled

# Down-block channels at width 1 by image size (Table II is the 32×32 row).
D_CHANNELS: dict[int, tuple[int, ...]] = {16: (128, 256), 32: (128, 256, 512), 64: (64, 128, 256, 512)}


class Discriminator(nn.Module):
    """Table II: n stride-2 convs with per-layer kernel and leaky-ReLU slope, sum pooling, head.

    With `d_attention`, self-attention follows the down-block that makes that resolution
    (section II-E of the conditioning study puts it in both G and D).

    Features are sum-pooled over space (as in the projection discriminator), so every
    head sees the same φ (B, F) whatever the image size.

    Args:
        cfg: model config (per-layer lists resolved).
        image_size: 16, 32 or 64.
        channels: image channels.
        num_classes: number of labels.
    """

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> None:
        super().__init__()
        n = num_blocks(image_size)
        widths = [channels, *scaled(D_CHANNELS[image_size], cfg.d_width)]
        self.cond = D_CONDITIONINGS[cfg.d_cond](num_classes, cfg.embed_dim, widths[-1], cfg.d_spectral_norm,
                                                cfg.d_hidden_layer)
        self.downs = nn.ModuleList(
            down_conv(widths[i] + self.cond.hidden_channels(i), widths[i + 1], per_layer(cfg.d_kernels)[i],
                      cfg.d_spectral_norm)
            for i in range(n)
        )
        self.acts = nn.ModuleList(nn.LeakyReLU(s) for s in per_layer(cfg.d_slopes))
        # Down-block i makes resolution image_size / 2^(i+1); attention follows the chosen one.
        self.attention_block = -1 if cfg.d_attention == "none" else round(math.log2(image_size / cfg.d_attention)) - 1
        self.attention = (SelfAttention(widths[self.attention_block + 1], cfg.d_spectral_norm)
                          if self.attention_block >= 0 else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> DOutput:
        """Images (B, C, H, W) and labels (B,) → DOutput with adv (B,)."""
        h = self.cond.hidden(x, y, 0)
        for i, (down, act) in enumerate(zip(self.downs, self.acts, strict=True)):
            h = act(down(h))  # (B, C_i, H/2, W/2)
            if i == self.attention_block and self.attention is not None:
                h = self.attention(h)
            h = self.cond.hidden(h, y, i + 1)
        phi = h.sum(dim=(2, 3))  # (B, F)
        return self.cond.head(phi, y)
