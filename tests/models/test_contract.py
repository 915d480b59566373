"""Every generator conditioning × discriminator conditioning × SN × kernel × size builds and trains."""

from __future__ import annotations

import itertools
import typing
from collections.abc import Iterator

import pytest
import torch

from hpsearch import config
from hpsearch.data import ImageDataset
from hpsearch.losses import LOSSES, GANObjective
from hpsearch.models import D_CONDITIONINGS, G_CONDITIONINGS, GENERATORS, build_discriminator, build_generator
from hpsearch.training import TrainState, build_state, train_step
from tests.conftest import random_dataset, tiny_config

COMBOS = list(itertools.product(sorted(G_CONDITIONINGS), sorted(D_CONDITIONINGS), [False, True], [3, 4, 5], [16, 32]))


def test_registries_match_config_choices() -> None:
    assert set(G_CONDITIONINGS) == set(typing.get_args(config.GeneratorConditioning))
    assert set(D_CONDITIONINGS) == set(typing.get_args(config.DiscriminatorConditioning))
    assert set(LOSSES) == set(typing.get_args(config.LossName))
    assert set(GENERATORS) == set(typing.get_args(config.GeneratorName))


@pytest.mark.parametrize(("g_cond", "d_cond", "use_sn", "kernel", "size"), COMBOS)
def test_build_shapes_and_one_step_per_loss(g_cond: str, d_cond: str, use_sn: bool, kernel: int, size: int) -> None:
    channels = 3 if size == 32 else 1
    n = {16: 2, 32: 3}[size]  # blocks; cover the first and the last hidden-concat position
    first, last = {"g_hidden_layer": 0, "d_hidden_layer": 1}, {"g_hidden_layer": n, "d_hidden_layer": n - 1}
    hidden = last if kernel == 5 else first
    model = {"g_cond": g_cond, "d_cond": d_cond, "g_spectral_norm": use_sn, "d_spectral_norm": use_sn,
             "g_kernels": kernel, "d_kernels": kernel, **hidden}
    dataset = random_dataset(channels=channels, size=size)
    for loss in sorted(LOSSES):
        cfg = tiny_config(size, channels, model=model, train={"loss": loss, "ema": False})
        gen = build_generator(cfg.model, size, channels, 3)
        disc = build_discriminator(cfg.model, size, channels, 3)
        z, y = torch.randn(4, cfg.model.z_dim), torch.tensor([0, 1, 2, 0])
        x = gen(z, y)
        assert x.shape == (4, channels, size, size)
        assert x.abs().max() <= 1
        out = disc(x, y)
        assert out.adv.shape == (4,)
        assert (out.class_logits is not None) == (d_cond == "acgan")

        _, unchanged = step_once(cfg, dataset)
        # Exempt by the maths: ψ's bias cancels in the WGAN loss (and in hinge when every score
        # is inside the margin); cbn_linear's shared embedding gets no gradient while its
        # linear maps are still at their zero init (first step without SN).
        exempt = {"D.cond.psi.bias"} | ({"G.cond.embed.weight"} if g_cond == "cbn_linear" and not use_sn else set())
        assert not unchanged - exempt, f"{loss}: parameters did not change: {sorted(unchanged - exempt)}"


def step_once(cfg: config.RunConfig, dataset: ImageDataset) -> tuple[TrainState, set[str]]:
    """One training step from a fresh state on 4 real images; returns the state and the names
    (G.* and D.*) of the parameters it left unchanged. Losses and parameters must stay finite."""
    state = build_state(cfg, dataset, torch.device("cpu"))
    before = {n: p.detach().clone() for n, p in named_parameters(state)}
    batch = (dataset.images[:4].float() / 127.5 - 1, dataset.labels[:4])
    loss_d, loss_g = train_step(state, GANObjective(cfg.train), lambda b=batch: b, cfg, dataset.num_classes)
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g), cfg.train.loss
    after = dict(named_parameters(state))
    assert all(torch.isfinite(p).all() for p in after.values())
    return state, {n for n in before if torch.equal(before[n], after[n])}


def named_parameters(state: TrainState) -> Iterator[tuple[str, torch.Tensor]]:
    """G's and D's parameters, named G.* and D.*."""
    yield from ((f"G.{n}", p) for n, p in state.generator.named_parameters())
    yield from ((f"D.{n}", p) for n, p in state.discriminator.named_parameters())


@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_64x64_has_four_blocks_and_exact_shapes(kernel: int) -> None:
    cfg = tiny_config(64, 3, model={"g_kernels": kernel, "d_kernels": kernel, "g_slopes": [0.0, 0.1, 0.2, 0.3]})
    gen, disc = build_generator(cfg.model, 64, 3, 5), build_discriminator(cfg.model, 64, 3, 5)
    assert len(gen.ups) == 4 and len(disc.downs) == 4
    assert [a.negative_slope for a in gen.acts] == [0.0, 0.1, 0.2, 0.3]
    x = gen(torch.randn(2, cfg.model.z_dim), torch.tensor([0, 4]))
    assert x.shape == (2, 3, 64, 64)
    assert disc(x, torch.tensor([0, 4])).adv.shape == (2,)
