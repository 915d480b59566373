"""Each loss against a hand computation on known inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hpsearch.losses import LOSSES, GANObjective
from hpsearch.models.conditioning import DOutput
from tests.conftest import tiny_config

REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 1.5])


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _loss(name: str, **train: object):  # type: ignore[no-untyped-def]
    cfg = tiny_config(train={"loss": name, **train}).train
    return LOSSES[name](cfg)


def test_hinge() -> None:
    loss = _loss("hinge")
    # relu(1 - r) = [0, .5, 2]; relu(1 + f) = [0, 1, 2.5]
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert loss.generator(FAKE).item() == pytest.approx(0.5 / 3)


def test_bce_with_one_sided_label_smoothing() -> None:
    loss = _loss("bce", real_label=0.9)
    real_term = -sum(0.9 * math.log(_sig(r)) + 0.1 * math.log(1 - _sig(r)) for r in REAL.tolist()) / 3
    fake_term = -sum(math.log(1 - _sig(f)) for f in FAKE.tolist()) / 3
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(real_term + fake_term, rel=1e-6)
    # Non-saturating generator loss: -log D(G(z)), with target 1 (no smoothing on the G side).
    assert loss.generator(FAKE).item() == pytest.approx(-sum(math.log(_sig(f)) for f in FAKE.tolist()) / 3, rel=1e-6)


def test_wgan_and_gradient_penalty_on_a_linear_critic() -> None:
    loss = _loss("wgan_gp", gp_weight=10.0)
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item())
    assert loss.generator(FAKE).item() == pytest.approx(0.5 / 3)

    class Linear(nn.Module):  # D(x) = <w, x>: the gradient is w everywhere, ‖w‖ = 3
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> DOutput:
            w = torch.zeros(x[0].numel())
            w[:2] = torch.tensor([3.0 * 0.6, 3.0 * 0.8])
            return DOutput(x.flatten(1) @ w)

    x_real, x_fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    penalty = loss.penalty(Linear(), x_real, x_fake, torch.zeros(5, dtype=torch.long))
    assert penalty.item() == pytest.approx(10.0 * (3.0 - 1.0) ** 2)


def test_acgan_cross_entropy_enters_both_losses_with_its_weight() -> None:
    cfg = tiny_config(train={"loss": "hinge", "acgan_weight": 0.5}).train
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])

    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> DOutput:
            return DOutput(x.flatten(1)[:, 0], logits)

    x_real, x_fake = torch.full((2, 1, 1, 1), 2.0), torch.full((2, 1, 1, 1), -2.0)  # hinge terms are 0
    y = torch.tensor([0, 0])
    ce = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(1 / (1 + math.e))) / 2
    objective = GANObjective(cfg)
    assert objective.d_loss(Fixed(), x_real, y, x_fake, y).item() == pytest.approx(0.5 * ce * 2, rel=1e-6)
    assert objective.g_loss(Fixed(), x_fake, y).item() == pytest.approx(2.0 + 0.5 * ce, rel=1e-6)
