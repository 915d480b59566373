"""Build generators and discriminators from a ModelConfig."""

from __future__ import annotations

from torch import nn

from hpsearch.config import ModelConfig
from hpsearch.models.conditioning import D_CONDITIONINGS, G_CONDITIONINGS, DOutput
from hpsearch.models.discriminators import Discriminator
from hpsearch.models.generators import GENERATORS

__all__ = ["DOutput", "D_CONDITIONINGS", "GENERATORS", "G_CONDITIONINGS", "build_discriminator", "build_generator",
           "trainable_parameters"]


def build_generator(cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> nn.Module:
    """The generator family `cfg.generator` with the configured conditioning."""
    return GENERATORS[cfg.generator](cfg, image_size, channels, num_classes)


def build_discriminator(cfg: ModelConfig, image_size: int, channels: int, num_classes: int) -> nn.Module:
    """The Table II discriminator with the configured head (one D for every generator family)."""
    return Discriminator(cfg, image_size, channels, num_classes)


def trainable_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the second paper's unit of comparison)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
