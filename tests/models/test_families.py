"""The generator families of the second paper: every family × conditioning builds and trains;
self-attention, modulated convolution and style mixing do what their papers say."""

from __future__ import annotations

import itertools

import pytest
import torch

from hpsearch.config import from_dict
from hpsearch.errors import ConfigError
from hpsearch.losses import LOSSES
from hpsearch.models import D_CONDITIONINGS, G_CONDITIONINGS, build_discriminator, build_generator
from hpsearch.models.generators import SAGANGenerator, StyleGAN2Generator
from hpsearch.models.layers import ModulatedConv2d, SelfAttention
from tests.conftest import random_dataset, tiny_config
from tests.models.test_contract import named_parameters, step_once

STYLE = {"w_dim": 8, "mapping_layers": 2, "embed_dim": 4}
# stylegan2 takes the label through its mapping network: g_cond does not apply to it.
COMBOS = [("dcgan", g, d) for g, d in itertools.product(sorted(G_CONDITIONINGS), sorted(D_CONDITIONINGS))]
COMBOS += [("sagan", g, d) for g, d in itertools.product(sorted(G_CONDITIONINGS), sorted(D_CONDITIONINGS))]
COMBOS += [("stylegan2", "cbn_linear", d) for d in sorted(D_CONDITIONINGS)]


def _model(family: str, g_cond: str, d_cond: str) -> dict[str, object]:
    model: dict[str, object] = {"generator": family, "g_cond": g_cond, "d_cond": d_cond, "d_attention": 8}
    if family == "sagan":
        model["g_attention"] = 16
    if family == "stylegan2":
        model.update(STYLE)
    return model


@pytest.mark.parametrize(("family", "g_cond", "d_cond"), COMBOS)
def test_every_family_and_conditioning_steps_with_each_loss(family: str, g_cond: str, d_cond: str) -> None:
    dataset = random_dataset(channels=1, size=16)
    for loss in sorted(LOSSES):
        cfg = tiny_config(16, 1, model=_model(family, g_cond, d_cond), train={"loss": loss, "ema": False})
        gen = build_generator(cfg.model, 16, 1, 3)
        z, y = torch.randn(4, cfg.model.z_dim), torch.tensor([0, 1, 2, 0])
        x = gen(z, y)
        assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all() and x.abs().max() <= 1
        out = build_discriminator(cfg.model, 16, 1, 3)(x, y)
        assert out.adv.shape == (4,) and torch.isfinite(out.adv).all()

        state, unchanged = step_once(cfg, dataset)
        # Exempt by the maths (see test_contract): ψ's bias in WGAN/hinge, cbn_linear's embedding at
        # zero-initialized linears; and attention's convolutions, whose output is scaled by γ = 0.
        exempt = {"D.cond.psi.bias", "G.cond.embed.weight"}
        exempt |= {n for n in unchanged if ".attention." in n and not n.endswith("gamma")}
        assert not unchanged - exempt, f"{loss}: parameters did not change: {sorted(unchanged - exempt)}"
        gammas = {n for n, _ in named_parameters(state) if n.endswith("attention.gamma")}
        assert gammas - unchanged  # γ itself learns from the first step
        # After a step every conditioning has made the output depend on the label (CBN starts neutral).
        gen = state.generator.eval()
        torch.manual_seed(1)
        x = gen(z, y)
        torch.manual_seed(1)  # the same noise inputs: only the label differs
        assert not torch.allclose(x, gen(z, torch.tensor([1, 2, 0, 1]))), "the output must depend on the label"


def test_attention_is_the_identity_at_init_and_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    block = SelfAttention(32, use_sn=True)
    x = torch.randn(3, 32, 8, 8)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)  # γ = 0
    weights = block.attention(x)
    assert weights.shape == (3, 64, 64) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 64))
    with torch.no_grad():
        block.gamma.fill_(1.0)
    assert not torch.allclose(block(x), x)


def test_demodulated_convolution_keeps_unit_variance() -> None:
    """For unit-variance input the demodulated weights have unit norm per output channel, so
    (away from the zero-padded border) every output has unit variance whatever the style."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 48, 3, w_dim=16)
    plain = ModulatedConv2d(64, 48, 3, w_dim=16, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    with torch.no_grad():  # styles far from 1, so that the check means something
        conv.affine.weight.normal_(0, 1.0)
        plain.affine.weight.copy_(conv.affine.weight)
    x, w = torch.randn(16, 64, 24, 24), torch.randn(16, 16)
    with torch.no_grad():
        out = conv(x, w)[:, :, 1:-1, 1:-1]
        per_sample = out.var(dim=(1, 2, 3))
        undemodulated = plain(x, w)[:, :, 1:-1, 1:-1].var(dim=(1, 2, 3))
    assert out.shape == (16, 48, 22, 22)
    assert abs(out.var().item() - 1) < 0.03  # 16·48·484 samples: the standard error is ~0.004
    assert (per_sample - 1).abs().max() < 0.08
    assert (undemodulated - 1).abs().max() > 0.3  # without demodulation the style changes the scale


def _stylegan(mixing: float) -> StyleGAN2Generator:
    cfg = from_dict({"data": {"image_size": 16, "channels": 1},
                     "model": {"generator": "stylegan2", "z_dim": 8, "dense_channels": 16, "g_width": 0.0625,
                               "style_mixing": mixing, **STYLE}})
    torch.manual_seed(0)
    gen = build_generator(cfg.model, 16, 1, 3)
    assert isinstance(gen, StyleGAN2Generator)
    return gen


def test_style_mixing_with_probability_zero_equals_no_mixing() -> None:
    gen = _stylegan(0.0).train()
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(5)
    mixed = gen(z, y)
    torch.manual_seed(5)
    plain = gen.synthesize(gen.map(z, y)[:, None].expand(-1, gen.num_styles, -1))
    torch.testing.assert_close(mixed, plain, rtol=0, atol=0)
    always = _stylegan(1.0).train()
    torch.manual_seed(5)
    assert not torch.allclose(always(z, y), plain)  # with probability 1 some layers take another w


def test_stylegan2_layout_truncation_and_class_mean_of_w() -> None:
    gen = _stylegan(0.5)
    assert gen.num_styles == 1 + 2 * 2 + 1  # 4×4 conv, two per up-block (16×16: two), toRGB
    z, y = torch.randn(64, 8), torch.arange(64) % 3
    gen.train()
    for _ in range(3):
        gen(z, y)
    assert gen.w_avg.abs().sum() > 0  # type: ignore[operator]
    gen.eval()
    torch.manual_seed(0)
    at_mean = gen(z[:3], y[:3], truncation=1e-6)
    torch.manual_seed(0)
    expected = gen.synthesize(gen.w_avg[y[:3]][:, None].expand(-1, gen.num_styles, -1))  # type: ignore[index]
    torch.testing.assert_close(at_mean, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("model", "message"), [
    ({"generator": "sagan"}, "sagan needs an attention resolution"),
    ({"g_attention": 32}, r"g_attention: must be 'none' or one of \[8, 16\] at image_size 16"),
    ({"d_attention": 16}, r"d_attention: must be 'none' or one of \[4, 8\] at image_size 16"),
    ({"g_attention": "all"}, r"must be an integer; or must be one of \['none'\]"),
])
def test_attention_resolution_must_exist(model: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict({"data": {"image_size": 16}, "model": model})


def test_sagan_has_spectral_norm_everywhere_and_attention_where_asked() -> None:
    cfg = tiny_config(32, 3, model={"generator": "sagan", "g_attention": 32, "g_spectral_norm": False})
    gen = build_generator(cfg.model, 32, 3, 3)
    assert isinstance(gen, SAGANGenerator) and gen.attention_block == 2  # after the last up-block (32×32)
    convs = [m for m in gen.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
