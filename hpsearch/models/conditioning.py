"""Every way the class label enters the generator and the discriminator, chosen by name.

A generator conditioning owns G's whole label pathway: what is concatenated to z, to a
hidden feature map, and which normalization layers (plain or conditional batch norm) the
generator uses. A discriminator conditioning owns D's: extra input or hidden channels
and the output head. Generators and discriminators call the same hooks whatever the
mechanism, so every mechanism works with every architecture.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from hpsearch.models.layers import broadcast_concat, sn

# --------------------------------------------------------------------------- generator side


class CondBatchNorm(nn.Module):
    """Batch norm whose gain and bias come from the label (de Vries et al., 2017).

    Subclasses define `gain_bias(c)`; the normalization itself has no affine parameters.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)

    def gain_bias(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain, bias = self.gain_bias(c)  # (B, C) each
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class CBNEmbedding(CondBatchNorm):
    """Per-class gain and bias tables; gains start at exactly 1 and biases at 0.

    The tables are not spectrally normalized: they are per-class scales, and SN would
    rescale the initial all-ones gains by 1/σ.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__(num_features)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def gain_bias(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gain(c), self.bias(c)  # c: (B,) labels


class CBNLinear(CondBatchNorm):
    """BigGAN's CBN: gain = 1 + W_g e, bias = W_b e from a shared class embedding e.

    Without spectral norm W_g and W_b start at zero, so gains start at exactly 1; with
    spectral norm they keep the default init (SN of a zero matrix is undefined).
    """

    def __init__(self, num_features: int, embed_dim: int, use_sn: bool) -> None:
        super().__init__(num_features)
        gain, bias = nn.Linear(embed_dim, num_features, bias=False), nn.Linear(embed_dim, num_features, bias=False)
        if not use_sn:
            nn.init.zeros_(gain.weight)
            nn.init.zeros_(bias.weight)
        self.gain, self.bias = sn(gain, use_sn), sn(bias, use_sn)

    def gain_bias(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 1.0 + self.gain(c), self.bias(c)  # c: (B, E) shared embedding


class PlainBatchNorm(nn.BatchNorm2d):
    """Unconditional batch norm with the conditional-norm call signature."""

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


class GCondition(nn.Module):
    """Base: label pathway of the generator. Defaults are the no-op for each hook.

    Args:
        num_classes: number of labels.
        embed_dim: class-embedding size.
        use_sn: spectral norm on the embedding and linear layers (G's switch).
        hidden_layer: for hidden concat, the position (0..n_blocks) of the concat.
    """

    z_extra = 0  # extra input features of the dense layer

    def __init__(self, num_classes: int, embed_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__()
        self.num_classes, self.embed_dim, self.use_sn = num_classes, embed_dim, use_sn
        self.hidden_layer = hidden_layer

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """What the norm layers receive for labels y (B,)."""
        return y

    def input(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The dense layer's input: z (B, Z) → (B, Z + z_extra)."""
        return z

    def hidden_channels(self, layer: int) -> int:
        """Extra channels concatenated before position `layer`."""
        return 0

    def hidden(self, h: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
        """Feature map before position `layer`, with the label added if this is the layer."""
        return h

    def norm(self, num_features: int) -> nn.Module:
        """A normalization layer called as norm(x, encode(y))."""
        return PlainBatchNorm(num_features)


class _EmbeddingGCondition(GCondition):
    def __init__(self, num_classes: int, embed_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__(num_classes, embed_dim, use_sn, hidden_layer)
        self.embed = sn(nn.Embedding(num_classes, embed_dim), use_sn)


class ConcatG(_EmbeddingGCondition):
    """Class embedding concatenated to z (Mirza & Osindero, 2014), plain batch norm."""

    @property
    def z_extra(self) -> int:  # type: ignore[override]
        return self.embed_dim

    def input(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(y)], dim=1)


class HiddenConcatG(_EmbeddingGCondition):
    """Class embedding broadcast over space and concatenated to one hidden feature map (Reed et al., 2016)."""

    def hidden_channels(self, layer: int) -> int:
        return self.embed_dim if layer == self.hidden_layer else 0

    def hidden(self, h: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
        return broadcast_concat(h, self.embed(y)) if layer == self.hidden_layer else h


class CBNEmbeddingG(GCondition):
    """Conditional batch norm with per-class gain/bias tables in every norm layer."""

    def norm(self, num_features: int) -> nn.Module:
        return CBNEmbedding(num_features, self.num_classes)


class CBNLinearG(_EmbeddingGCondition):
    """Conditional batch norm from one shared class embedding through per-layer linears (BigGAN)."""

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        return self.embed(y)  # (B, E)

    def norm(self, num_features: int) -> nn.Module:
        return CBNLinear(num_features, self.embed_dim, self.use_sn)


G_CONDITIONINGS: dict[str, type[GCondition]] = {
    "concat": ConcatG,
    "hidden_concat": HiddenConcatG,
    "cbn_embedding": CBNEmbeddingG,
    "cbn_linear": CBNLinearG,
}

# --------------------------------------------------------------------------- discriminator side


class DOutput(NamedTuple):
    """What a discriminator returns.

    Attributes:
        adv: (B,) real/fake score (a logit for bce, a critic value for hinge and wgan-gp).
        class_logits: (B, num_classes) auxiliary classifier logits, only for `acgan`.
    """

    adv: torch.Tensor
    class_logits: torch.Tensor | None = None


class DCondition(nn.Module):
    """Base: label pathway of the discriminator; the default head is a linear ψ(φ).

    Args:
        num_classes: number of labels.
        embed_dim: embedding size for concat heads.
        feature_dim: size F of the pooled features φ the head receives.
        use_sn: spectral norm on the head's linear and embedding layers (D's switch).
        hidden_layer: position of the concat (0 = input image, i = after down-block i).
    """

    def __init__(self, num_classes: int, embed_dim: int, feature_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__()
        self.hidden_layer = hidden_layer
        self.embed_dim = embed_dim
        self.psi = sn(nn.Linear(feature_dim, 1), use_sn)

    def hidden_channels(self, layer: int) -> int:
        """Extra channels at position `layer`."""
        return 0

    def hidden(self, h: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
        """The map at position `layer`, with the label added if this is the layer."""
        return h

    def head(self, phi: torch.Tensor, y: torch.Tensor) -> DOutput:
        """Pooled features φ (B, F) and labels → DOutput."""
        return DOutput(self.psi(phi).squeeze(1))


class ProjectionD(DCondition):
    """Projection discriminator: ψ(φ) + ⟨embed(y), φ⟩ (Miyato & Koyama, 2018)."""

    def __init__(self, num_classes: int, embed_dim: int, feature_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__(num_classes, embed_dim, feature_dim, use_sn, hidden_layer)
        embed = nn.Embedding(num_classes, feature_dim)  # the projection's size is F, not embed_dim
        nn.init.xavier_uniform_(embed.weight)
        self.embed = sn(embed, use_sn)

    def head(self, phi: torch.Tensor, y: torch.Tensor) -> DOutput:
        return DOutput(self.psi(phi).squeeze(1) + (self.embed(y) * phi).sum(dim=1))


class HiddenConcatD(DCondition):
    """Class embedding broadcast and concatenated at `hidden_layer` (0 = to the input image)."""

    def __init__(self, num_classes: int, embed_dim: int, feature_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__(num_classes, embed_dim, feature_dim, use_sn, hidden_layer)
        self.embed = sn(nn.Embedding(num_classes, embed_dim), use_sn)

    def hidden_channels(self, layer: int) -> int:
        return self.embed_dim if layer == self.hidden_layer else 0

    def hidden(self, h: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
        return broadcast_concat(h, self.embed(y)) if layer == self.hidden_layer else h


class ConcatD(HiddenConcatD):
    """Class embedding as extra input channels of the image."""

    def __init__(self, num_classes: int, embed_dim: int, feature_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__(num_classes, embed_dim, feature_dim, use_sn, hidden_layer=0)


class ACGanD(DCondition):
    """Auxiliary classifier head (Odena et al., 2017): unconditional score plus class logits."""

    def __init__(self, num_classes: int, embed_dim: int, feature_dim: int, use_sn: bool, hidden_layer: int) -> None:
        super().__init__(num_classes, embed_dim, feature_dim, use_sn, hidden_layer)
        self.classifier = sn(nn.Linear(feature_dim, num_classes), use_sn)

    def head(self, phi: torch.Tensor, y: torch.Tensor) -> DOutput:
        return DOutput(self.psi(phi).squeeze(1), self.classifier(phi))


D_CONDITIONINGS: dict[str, type[DCondition]] = {
    "projection": ProjectionD,
    "concat": ConcatD,
    "hidden_concat": HiddenConcatD,
    "acgan": ACGanD,
}
