"""Generators by family: `dcgan` (Table I of the conditioning study), `sagan`, `stylegan2` (small).

The three are the ones the second paper compares under one discriminator; all take
(z, labels) and return images in [-1, 1], so training, metrics and sampling treat them alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from hpsearch.config import ModelConfig, num_blocks, per_layer
from hpsearch.models.conditioning import G_CONDITIONINGS
from hpsearch.models.layers import ModulatedConv2d, NoiseInjection, SelfAttention, scaled, sn, up_conv

# Up-block channels at width 1 by image size (Table I is the 32×32 row).
G_CHANNELS: dict[int, tuple[int, ...]] = {16: (256, 128), 32: (512, 256, 128), 64: (512, 256, 128, 64)}


class DCGANGenerator(nn.Module):
    """Table I: z → dense → 4×4×c0 → n stride-2 transposed convs → 3×3 conv → tanh.

    Each up-block is transposed conv → (conditional) batch norm → leaky ReLU with its own
    kernel and slope. The label enters wherever the chosen conditioning puts it. With
    `g_attention`, self-attention follows the up-block that makes that resolution.

    Args:
        cfg: model config (per-layer lists already resolved to one value per block).
        image_size: 16, 32 or 64.
        channels: image channels.
        num_classes: number of labels.
    """

    always_sn = False  # SAGAN: spectral norm on every layer whatever g_spectral_norm says

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> None:
        super().__init__()
        n = num_blocks(image_size)
        use_sn = cfg.g_spectral_norm or self.always_sn
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
        # Up-block i makes resolution 8·2^i; attention follows the block of the chosen one.
        self.attention_block = -1 if cfg.g_attention == "none" else int(math.log2(cfg.g_attention // 8))
        self.attention = (SelfAttention(widths[self.attention_block + 1], use_sn) if self.attention_block >= 0
                          else None)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (B, Z) and labels (B,) → images (B, C, H, W) in [-1, 1]."""
        c = self.cond.encode(y)
        h = self.dense(self.cond.input(z, y)).view(-1, self.c0, 4, 4)  # (B, c0, 4, 4)
        h = torch.relu(self.dense_norm(h, c))
        for i, (up, norm, act) in enumerate(zip(self.ups, self.norms, self.acts, strict=True)):
            h = self.cond.hidden(h, y, i)
            h = act(norm(up(h), c))  # (B, C_i, 2H, 2W)
            if i == self.attention_block and self.attention is not None:
                h = self.attention(h)
        h = self.cond.hidden(h, y, len(self.ups))
        return torch.tanh(self.to_rgb(h))


class SAGANGenerator(DCGANGenerator):
    """The second paper's SAGAN generator: Table I with spectral norm on every layer and
    self-attention at `g_attention` (the paper puts it after the last batch norm, i.e. at the
    output resolution). Conditioned like the DCGAN generator.
    """

    always_sn = True


class StyleLayer(nn.Module):
    """[2× bilinear upsample] → modulated 3×3 conv → noise → bias → leaky ReLU (gain √2)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim)
        self.noise = NoiseInjection()
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.noise(self.conv(x, w)) + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * math.sqrt(2)  # the gain keeps unit variance through the ReLU


class StyleGAN2Generator(nn.Module):
    """A small StyleGAN2 generator (Karras et al., 2020), class-conditional through its mapping network.

    z and the class embedding (each normalized) → mapping MLP → w. A learned 4×4 constant
    goes through one modulated convolution at 4×4 and two per up-block (the first after a
    bilinear 2× upsample), each with its own style from w, per-pixel noise and a bias; a 1×1
    modulated toRGB (no demodulation) and tanh give the image. In training, a share
    `style_mixing` of the batches switches to a second w (same labels) at a random layer,
    so that neighbouring layers do not learn to depend on each other's style. The running
    mean of w per class is kept for the truncation trick at sampling time.

    Args:
        cfg: model config: z_dim, embed_dim, w_dim, mapping_layers, style_mixing, dense_channels
            (the constant's channels) and g_width (the up-block channels).
        image_size: 16, 32 or 64.
        channels: image channels.
        num_classes: number of labels.
    """

    w_avg_beta = 0.995

    def __init__(self, cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.style_mixing = cfg.z_dim, num_classes, cfg.style_mixing
        self.embed = nn.Embedding(num_classes, cfg.embed_dim)
        layers: list[nn.Module] = []
        for i in range(cfg.mapping_layers):
            layers += [nn.Linear(cfg.z_dim + cfg.embed_dim if i == 0 else cfg.w_dim, cfg.w_dim), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)
        widths = [cfg.dense_channels, *scaled(G_CHANNELS[image_size], cfg.g_width)]
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        blocks = [StyleLayer(widths[0], widths[0], cfg.w_dim)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [StyleLayer(c_in, c_out, cfg.w_dim, upsample=True), StyleLayer(c_out, c_out, cfg.w_dim)]
        self.layers = nn.ModuleList(blocks)
        self.to_rgb = ModulatedConv2d(widths[-1], channels, 1, cfg.w_dim, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(channels))
        self.num_styles = len(self.layers) + 1  # one w per layer and one for toRGB
        self.register_buffer("w_avg", torch.zeros(num_classes, cfg.w_dim))

    def map(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (B, Z) and labels (B,) → w (B, w_dim)."""
        e = self.embed(y)
        x = torch.cat([F.normalize(z, dim=1) * math.sqrt(z.shape[1]), F.normalize(e, dim=1) * math.sqrt(e.shape[1])],
                      dim=1)
        return self.mapping(x)

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """One w per style (B, num_styles, w_dim) → images (B, C, H, W) in [-1, 1]."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i])
        return torch.tanh(self.to_rgb(x, ws[:, -1]) + self.rgb_bias[None, :, None, None])

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """z (B, Z) and labels (B,) → images; `truncation` ψ < 1 pulls w toward its class mean."""
        w = self.map(z, y)
        ws = w[:, None].expand(-1, self.num_styles, -1)  # (B, num_styles, w_dim)
        if self.training:
            self._track_w_avg(w.detach(), y)
            if self.style_mixing > 0 and float(torch.rand(())) < self.style_mixing:  # CPU draw: no device sync
                cutoff = int(torch.randint(1, self.num_styles, ()))
                w2 = self.map(torch.randn_like(z), y)[:, None].expand(-1, self.num_styles - cutoff, -1)
                ws = torch.cat([ws[:, :cutoff], w2], dim=1)
        if truncation != 1.0:
            center = self.w_avg[y][:, None]  # type: ignore[index]
            ws = center + truncation * (ws - center)
        return self.synthesize(ws)

    @torch.no_grad()
    def _track_w_avg(self, w: torch.Tensor, y: torch.Tensor) -> None:
        """Per-class running mean of w, updated only for the classes in the batch (no device sync)."""
        counts = torch.bincount(y, minlength=self.num_classes).to(w.dtype)[:, None]  # (K, 1)
        sums = torch.zeros_like(self.w_avg).index_add_(0, y, w.to(self.w_avg.dtype))  # type: ignore[arg-type]
        weight = (1 - self.w_avg_beta) * (counts > 0).to(w.dtype)
        self.w_avg.lerp_(sums / counts.clamp(min=1), weight)  # type: ignore[operator]


GENERATORS: dict[str, type[nn.Module]] = {"dcgan": DCGANGenerator, "sagan": SAGANGenerator,
                                          "stylegan2": StyleGAN2Generator}
