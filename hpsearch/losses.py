"""Adversarial losses by name, and the GAN objective that adds the conditional terms."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.models.conditioning import DOutput


class AdversarialLoss:
    """Contract: `discriminator` and `generator` map D's scores to scalar losses to minimize.

    `penalty` is an extra discriminator term that needs D itself (zero unless overridden).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self, disc: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x_real.new_zeros(())


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye, 2017), the conditioning study's eq. (12)."""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


class BCELoss(AdversarialLoss):
    """Non-saturating BCE on logits with one-sided label smoothing (real target `real_label`)."""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_target = torch.full_like(real, self.cfg.real_label)
        return (F.binary_cross_entropy_with_logits(real, real_target)
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class WGANGPLoss(AdversarialLoss):
    """Wasserstein critic loss with gradient penalty λ·E[(‖∇D(x̂)‖₂ − 1)²] (Gulrajani et al., 2017)."""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()

    def penalty(self, disc: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(x_real.shape[0], 1, 1, 1, device=x_real.device, dtype=x_real.dtype)
        x_hat = (alpha * x_real + (1 - alpha) * x_fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(disc(x_hat, y).adv.float().sum(), x_hat, create_graph=True)
        return self.cfg.gp_weight * ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


LOSSES: dict[str, type[AdversarialLoss]] = {"hinge": HingeLoss, "bce": BCELoss, "wgan_gp": WGANGPLoss}


class GANObjective:
    """The full D and G losses: adversarial loss + penalty + auxiliary-classifier terms.

    Keeps every loss variant out of the training loop: the loop calls `d_loss` and
    `g_loss` whatever the loss and the discriminator head.
    """

    def __init__(self, cfg: TrainConfig, augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.adv = LOSSES[cfg.loss](cfg)
        self.acgan_weight = cfg.acgan_weight
        self.augment = augment if augment is not None else _identity

    def d_loss(self, disc: nn.Module, x_real: torch.Tensor, y_real: torch.Tensor,
               x_fake: torch.Tensor, y_fake: torch.Tensor) -> torch.Tensor:
        """Discriminator loss on a real batch and a (detached) fake batch.

        With DiffAugment (`augment`), D only ever sees augmented images, real and fake alike;
        the WGAN-GP penalty interpolates between the augmented real and the augmented fake
        batch, the images D is trained on, so it constrains D's gradient where D is used.
        """
        x_real, x_fake = self.augment(x_real), self.augment(x_fake)
        real, fake = disc(x_real, y_real), disc(x_fake, y_fake)
        loss = self.adv.discriminator(real.adv.float(), fake.adv.float())
        # The penalty interpolates real and fake images; it is evaluated with the real labels.
        penalty = self.adv.penalty(disc, x_real, x_fake, y_real)
        return loss + penalty + self._aux(real, y_real) + self._aux(fake, y_fake)

    def g_loss(self, disc: nn.Module, x_fake: torch.Tensor, y_fake: torch.Tensor) -> torch.Tensor:
        """Generator loss on a fake batch (gradients flow through the augmentation and D into G)."""
        fake = disc(self.augment(x_fake), y_fake)
        return self.adv.generator(fake.adv.float()) + self._aux(fake, y_fake)

    def _aux(self, out: DOutput, y: torch.Tensor) -> torch.Tensor:
        if out.class_logits is None:
            return out.adv.new_zeros(())
        return self.acgan_weight * F.cross_entropy(out.class_logits.float(), y)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x
