"""Building blocks shared by generators and discriminators."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm  # PyTorch's own; tests/models/test_layers.py pins it

# Transposed-conv (padding, output_padding) for stride 2 so that the output is exactly
# twice the input for every searchable kernel: out = 2(H-1) - 2p + k + op = 2H.
UP_PADDING: dict[int, tuple[int, int]] = {3: (1, 1), 4: (1, 0), 5: (2, 1)}


class EagerSpectralNorm(_SpectralNorm):
    """PyTorch's spectral-norm parametrization, kept out of `torch.compile`'s graphs.

    Its power iteration updates the `_u`/`_v` buffers in place, after cloning them so that a
    tensor saved for backward by D's first call (real images) is not changed by its second
    (fakes). Compiled, that guard does not hold for every layer: with `train.compile` the
    backward failed ("modified by an inplace operation") for D's concat and hidden-concat
    embeddings and SAGAN's attention (torch 2.13, CPU), while projection and AC-GAN ran. Run
    eagerly, it is PyTorch's exact code; the graph breaks around it cost little (compiled steps
    are still 1.3x faster on the CPU: benchmarks/README.md, `compile_cost.py`).
    """

    @torch.compiler.disable
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return super().forward(weight)


def sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap `module` in spectral normalization when `enabled` (Miyato et al., 2018).

    The same as `torch.nn.utils.parametrizations.spectral_norm` (one power iteration; `dim` 1
    for transposed convolutions), with the parametrization compiled never (`EagerSpectralNorm`).
    """
    if not enabled:
        return module
    dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    weight = module.weight
    assert isinstance(weight, torch.Tensor)  # every layer sn wraps has one (conv, linear, embedding)
    parametrize.register_parametrization(module, "weight", EagerSpectralNorm(weight, 1, dim, 1e-12))
    return module


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


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al., 2019): every position attends to every other.

    f, g and h are 1×1 convolutions to C/8 channels; softmax(f(x)ᵀ g(x)) over positions
    weights h(x), and a 1×1 convolution projects back to C. The result is added to the
    input scaled by γ, which starts at 0 so that the block is the identity at first and
    the network learns how much non-local evidence to use.

    Args:
        channels: C, the input and output channels.
        use_sn: spectral norm on the four convolutions.
    """

    def __init__(self, channels: int, use_sn: bool) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.f = sn(nn.Conv2d(channels, inner, 1, bias=False), use_sn)  # queries
        self.g = sn(nn.Conv2d(channels, inner, 1, bias=False), use_sn)  # keys
        self.h = sn(nn.Conv2d(channels, inner, 1, bias=False), use_sn)  # values
        self.out = sn(nn.Conv2d(inner, channels, 1, bias=False), use_sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, N, N), N = H·W: row i is query position i's weights over all positions."""
        q = self.f(x).flatten(2)  # (B, C/8, N)
        k = self.g(x).flatten(2)  # (B, C/8, N)
        return torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (B, N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        attn = self.attention(x)
        v = self.h(x).flatten(2)  # (B, C/8, N)
        o = torch.bmm(v, attn.transpose(1, 2)).view(b, -1, height, width)  # o_i = Σ_j attn_ij v_j
        return x + self.gamma * self.out(o)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (Karras et al., 2020): a style scales the input channels.

    The weight is w'_oik = w_oik · s_i with s = affine(style); with demodulation each output
    channel's weight is divided by its norm, so that unit-variance inputs give unit-variance
    outputs whatever the style (this replaces AdaIN's instance norm without its artefacts).
    Computed in the equivalent non-fused form (scale the input, convolve, scale the output).

    Args:
        c_in, c_out: channels.
        kernel: odd kernel size (3 for the body, 1 for toRGB).
        w_dim: size of the style vector w.
        demodulate: normalize each output channel's weight (off for toRGB).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, w_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.c_out, self.kernel, self.demodulate = c_out, kernel, demodulate
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale = (c_in * kernel * kernel) ** -0.5  # equalized learning rate
        self.affine = nn.Linear(w_dim, c_in)
        nn.init.ones_(self.affine.bias)  # styles start at 1: the plain convolution

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W), w (B, w_dim) → (B, C_out, H, W)."""
        s = self.affine(w)  # (B, C_in)
        # Scaling the input by s equals scaling the weight's input channels (StyleGAN2's non-fused
        # form): one shared convolution instead of a (B, C_out, C_in, k, k) weight per sample.
        out = F.conv2d(x * s[:, :, None, None], self.weight * self.scale, padding=self.kernel // 2)
        if self.demodulate:  # d_o = 1 / ||w'_o||, with ||w'_o||² = Σ_i s_i² Σ_k (scale·w_oik)²
            norms = s.pow(2) @ (self.scale**2 * self.weight.pow(2).sum(dim=(2, 3))).T  # (B, C_out)
            out = out * torch.rsqrt(norms + 1e-8)[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise times a learned scale (0 at first), for stochastic detail."""

    def __init__(self) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.strength * noise
