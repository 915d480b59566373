"""Each conditioning mechanism uses the label; CBN starts at identity; projection is exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hpsearch.losses import GANObjective
from hpsearch.models import D_CONDITIONINGS, G_CONDITIONINGS, build_discriminator, build_generator
from hpsearch.models.conditioning import CBNEmbedding, CBNLinear, DOutput
from hpsearch.training import build_state, train_step
from tests.conftest import random_dataset, tiny_config


def _trained_state(g_cond: str, d_cond: str, use_sn: bool):  # type: ignore[no-untyped-def]
    """Models after two real training steps, so zero-initialised conditioning paths are non-trivial."""
    cfg = tiny_config(model={"g_cond": g_cond, "d_cond": d_cond, "g_spectral_norm": use_sn,
                             "d_spectral_norm": use_sn, "g_hidden_layer": 1, "d_hidden_layer": 1},
                      train={"ema": False, "g_lr": 1e-2, "d_lr": 1e-2})
    dataset = random_dataset()
    state = build_state(cfg, dataset, torch.device("cpu"))
    batch = (dataset.images[:4].float() / 127.5 - 1, dataset.labels[:4])
    for _ in range(2):
        train_step(state, GANObjective(cfg.train), lambda: batch, cfg, 3)
    return cfg, state


@pytest.mark.parametrize("use_sn", [False, True])
@pytest.mark.parametrize("g_cond", sorted(G_CONDITIONINGS))
def test_generator_output_depends_on_label(g_cond: str, use_sn: bool) -> None:
    cfg, state = _trained_state(g_cond, "projection", use_sn)
    gen = state.generator.eval()
    z = torch.randn(4, cfg.model.z_dim)
    with torch.no_grad():
        a, b = gen(z, torch.zeros(4, dtype=torch.long)), gen(z, torch.ones(4, dtype=torch.long))
        again = gen(z, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(a, again)  # deterministic for a fixed label
    assert (a - b).abs().max() > 1e-4, f"{g_cond}: changing only the label did not change the image"


@pytest.mark.parametrize("use_sn", [False, True])
@pytest.mark.parametrize("d_cond", sorted(D_CONDITIONINGS))
def test_discriminator_depends_on_label(d_cond: str, use_sn: bool) -> None:
    cfg, state = _trained_state("cbn_embedding", d_cond, use_sn)
    disc = state.discriminator.eval()
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        out0, out1 = disc(x, y0), disc(x, y1)
    if d_cond == "acgan":
        # AC-GAN's score ignores the label by design; the label enters through the class loss.
        objective = GANObjective(cfg.train)
        with torch.no_grad():
            assert abs(objective.d_loss(disc, x, y0, x, y0) - objective.d_loss(disc, x, y1, x, y1)) > 1e-4
    else:
        assert (out0.adv - out1.adv).abs().max() > 1e-4, f"{d_cond}: score ignores the label"


@pytest.mark.parametrize("use_sn", [False, True])
def test_cbn_embedding_gains_start_at_one(use_sn: bool) -> None:
    cfg = tiny_config(model={"g_cond": "cbn_embedding", "g_spectral_norm": use_sn})
    gen = build_generator(cfg.model, 16, 1, 5)
    norms = [m for m in gen.modules() if isinstance(m, CBNEmbedding)]
    assert len(norms) == 3  # after the dense layer and after each of the 2 up-blocks
    for norm in norms:
        gain, bias = norm.gain_bias(torch.arange(5))
        torch.testing.assert_close(gain, torch.ones_like(gain))
        torch.testing.assert_close(bias, torch.zeros_like(bias))


def test_cbn_linear_gains_start_at_one_and_identity_norm() -> None:
    cfg = tiny_config(model={"g_cond": "cbn_linear", "g_spectral_norm": False})
    gen = build_generator(cfg.model, 16, 1, 5)
    norms = [m for m in gen.modules() if isinstance(m, CBNLinear)]
    assert len(norms) == 3
    e = gen.cond.encode(torch.arange(5))
    for norm in norms:
        gain, bias = norm.gain_bias(e)
        torch.testing.assert_close(gain, torch.ones_like(gain))
        torch.testing.assert_close(bias, torch.zeros_like(bias))
    x = torch.randn(5, norms[-1].bn.num_features, 4, 4)
    torch.testing.assert_close(norms[-1](x, e), nn.functional.batch_norm(x, None, None, training=True))


@pytest.mark.parametrize("use_sn", [False, True])
def test_projection_head_equals_hand_computation(use_sn: bool) -> None:
    cfg = tiny_config(model={"d_cond": "projection", "d_spectral_norm": use_sn})
    disc = build_discriminator(cfg.model, 16, 1, 3).eval()  # eval: SN uses its stored u, v
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        h = x
        for down, act in zip(disc.downs, disc.acts, strict=True):
            h = act(down(h))
        phi = h.sum(dim=(2, 3))  # (B, F) sum pooling
        psi_w, psi_b = disc.cond.psi.weight, disc.cond.psi.bias
        embed = disc.cond.embed.weight  # (K, F), spectrally normalised when SN is on
        expected = phi @ psi_w[0] + psi_b[0] + (embed[y] * phi).sum(dim=1)
        out = disc(x, y)
    assert isinstance(out, DOutput) and out.class_logits is None
    torch.testing.assert_close(out.adv, expected)
    if use_sn:  # the normalised weights have spectral norm 1
        torch.testing.assert_close(torch.linalg.matrix_norm(embed, ord=2), torch.tensor(1.0), atol=0.05, rtol=0)


def test_hidden_concat_adds_channels_only_at_its_layer() -> None:
    cfg = tiny_config(32, 3, model={"g_cond": "hidden_concat", "g_hidden_layer": 2,
                                    "d_cond": "hidden_concat", "d_hidden_layer": 2})
    gen, disc = build_generator(cfg.model, 32, 3, 10), build_discriminator(cfg.model, 32, 3, 10)
    e = cfg.model.embed_dim
    assert [up.in_channels for up in gen.ups] == [8, 16, 8 + e]  # c0=8, widths 16, 8, 4
    assert [down.in_channels for down in disc.downs] == [3, 8, 16 + e]  # widths 8, 16, 32
