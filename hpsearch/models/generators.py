"""Generators by family; `dcgan` is the Table I hypermodel of the conditioning study."""

from __future__ import annotations

import torch
from torch import nn

from hpsearch.config import ModelConfig, num_blocks, per_layer
from hpsearch.models.conditioning import G_CONDITIONINGS
from hpsearch.models.layers import scaled, sn, up_conv

# Up-block channels at width 1 by image size (Table I is the 32×32 row).
G_CHANNELS: dict[int, tuple[int, ...]] = {16: (256, 128), 32: (512, 256, 128), 64: (512, 256, 128, 64)}


class DCGANGenerator(nn.Module):
    """Table I: z → dense → 4×4×c0 → n stride-2 transposed convs → 3×3 conv → tanh.

    Each up-block is transposed conv → (conditional) batch norm → leaky ReLU with its own
    kernel and slope. The label enters wherever the chosen conditioning puts it.

    Args:
        cfg: model config (per-layer lists already resolved to one value per block).
        image_size: 16, 32 or 64.
        channels: image channels.
        num_classes: number of labels.
    """

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> None:
        super().__init__()
        n = num_blocks(image_size)
        use_sn = cfg.g_spectral_norm
        self.z_dim, self.num_classes, self.c0 = cfg.z_dim, num_classes, cfg.dense_channels
        self.cond = G_CONDITIONINGS[cfg.g_cond](num_classes, cfg.embed_dim, use_sn, cfg.g_hidden_layer)
        self.dense = sn(nn.Linear(cfg.z_dim + self.cond.z_extra, 4 * 4 * self.c0), use_sn)
        self.dense_norm = self.cond.norm(self.c0)
        widths = [self.c0, *scaled(G_CHANNELS[image_size], cfg.g_width)]
        self.ups = nn.ModuleList(
            up_conv(widths[i] + self.cond.hidden_channels(i), widths[i + 1], per_layer(cfg.g_kernels)[i], use_sn)
            for i in range(n)
        )
        self.norms = nn.ModuleList(self.cond.norm(w) for w in widths[1:])
        self.acts = nn.ModuleList(nn.LeakyReLU(s) for s in per_layer(cfg.g_slopes))
        self.to_rgb = sn(nn.Conv2d(widths[-1] + self.cond.hidden_channels(n), channels, 3, 1, 1), use_sn)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (B, Z) and labels (B,) → images (B, C, H, W) in [-1, 1]."""
        c = self.cond.encode(y)
        h = self.dense(self.cond.input(z, y)).view(-1, self.c0, 4, 4)  # (B, c0, 4, 4)
        h = torch.relu(self.dense_norm(h, c))
        for i, (up, norm, act) in enumerate(zip(self.ups, self.norms, self.acts, strict=True)):
            h = self.cond.hidden(h, y, i)
            h = act(norm(up(h), c))  # (B, C_i, 2H, 2W)
        h = self.cond.hidden(h, y, len(self.ups))
        return torch.tanh(self.to_rgb(h))


GENERATORS: dict[str, type[nn.Module]] = {"dcgan": DCGANGenerator}
