"""Building blocks shared by generators and discriminators."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

# Transposed-conv (padding, output_padding) for stride 2 so that the output is exactly
# twice the input for every searchable kernel: out = 2(H-1) - 2p + k + op = 2H.
UP_PADDING: dict[int, tuple[int, int]] = {3: (1, 1), 4: (1, 0), 5: (2, 1)}


def sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap `module` in spectral normalization when `enabled` (Miyato et al., 2018)."""
    return spectral_norm(module) if enabled else module


def up_conv(c_in: int, c_out: int, kernel: int, use_sn: bool) -> nn.Module:
    """Stride-2 transposed convolution that doubles H and W for kernel 3, 4 or 5."""
    padding, output_padding = UP_PADDING[kernel]
    return sn(nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding), use_sn)


def down_conv(c_in: int, c_out: int, kernel: int, use_sn: bool) -> nn.Module:
    """Stride-2 convolution that halves even H and W for kernel 3, 4 or 5."""
    return sn(nn.Conv2d(c_in, c_out, kernel, 2, (kernel - 1) // 2), use_sn)


def broadcast_concat(h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Concatenate per-sample vectors e (B, E) to every position of h (B, C, H, W) → (B, C+E, H, W)."""
    e_map = e[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3]).to(h.dtype)
    return torch.cat([h, e_map], dim=1)


def scaled(channels: tuple[int, ...], width: float) -> list[int]:
    """Channel counts times a width factor, at least 1 each."""
    return [max(1, round(c * width)) for c in channels]
