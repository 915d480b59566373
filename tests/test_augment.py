"""Augmentation: classic ops on real images only, DiffAugment on all D sees, differentiably; limited data."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml

from hpsearch.augment import DIFFAUG_OPS, ClassicAugment, DiffAugment
from hpsearch.cli import main
from hpsearch.config import AugmentConfig, from_dict, load_config
from hpsearch.data import DeviceBatchSampler
from hpsearch.errors import ConfigError
from hpsearch.losses import GANObjective
from hpsearch.models import build_discriminator, build_generator
from hpsearch.search import load_space
from hpsearch.training import build_state, train_step
from tests.conftest import random_dataset, tiny_config

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
STRONG = {"flip": {"flip": 1.0}, "rotate": {"rotate": 90.0, "rotate_p": 1.0}, "shear": {"shear": 30.0, "shear_p": 1.0},
          "translate": {"translate": 0.25, "translate_p": 1.0},
          "color": {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "color_p": 1.0}}


def _batch(channels: int = 3, n: int = 32, size: int = 16) -> torch.Tensor:
    """Images in [-1, 1] that use the whole range (so clipping would show)."""
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("op", sorted(STRONG))
@pytest.mark.parametrize("channels", [1, 3])
def test_each_classic_op_keeps_shape_and_range_and_changes_images(op: str, channels: int) -> None:
    x = _batch(channels)
    y = ClassicAugment(AugmentConfig(**STRONG[op]), _rng())(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    changed = (y - x).flatten(1).abs().amax(1) > 1e-4
    assert bool(changed.all()), f"{op} at probability 1 left {int((~changed).sum())} images unchanged"


def test_classic_probabilities_and_zero_strength() -> None:
    x = _batch()
    assert not ClassicAugment(AugmentConfig(), _rng()).enabled  # the default: off
    half = ClassicAugment(AugmentConfig(rotate=45.0, rotate_p=0.5), _rng())(_batch(n=2000, size=8))
    changed = ((half - _batch(n=2000, size=8)).flatten(1).abs().amax(1) > 1e-4).float().mean()
    assert 0.45 < float(changed) < 0.55  # 2000 draws: SD of the share 0.011
    none = ClassicAugment(AugmentConfig(rotate=45.0, rotate_p=0.0, flip=0.0, brightness=0.3, color_p=0.0), _rng())
    assert torch.allclose(none(x), x, atol=1e-5)  # drawn but not applied: the identity warp


@pytest.mark.parametrize("op", sorted(DIFFAUG_OPS))
def test_each_diffaug_op_keeps_shape_and_its_documented_range(op: str) -> None:
    x = _batch()
    y = DiffAugment(op, _rng())(x)
    assert y.shape == x.shape
    if op == "color":  # brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5] (the reference implementation)
        assert float(y.abs().max()) <= 1.5 * (2 * 1.5 + 0.5) + 1e-5
    else:  # shifts and cutouts move or zero pixels: values stay those of the image, or 0
        assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
        zeros = (y == 0).float().mean()
        assert float(zeros) > 0  # a zero border (translation) or a zeroed square (cutout)


def test_same_generator_state_gives_the_same_augmentation() -> None:
    cfg, x = AugmentConfig(**{k: v for d in STRONG.values() for k, v in d.items()}), _batch()
    assert torch.equal(ClassicAugment(cfg, _rng(3))(x), ClassicAugment(cfg, _rng(3))(x))
    assert torch.equal(DiffAugment("color,translation,cutout", _rng(3))(x),
                       DiffAugment("color,translation,cutout", _rng(3))(x))
    assert not torch.equal(ClassicAugment(cfg, _rng(3))(x), ClassicAugment(cfg, _rng(4))(x))


@pytest.mark.parametrize("loss", ["hinge", "bce", "wgan_gp"])
def test_gradients_reach_the_generator_through_diffaugment_in_every_loss(loss: str) -> None:
    cfg = tiny_config(train={"loss": loss, "diffaug": "color,translation,cutout"})
    gen, disc = build_generator(cfg.model, 16, 1, 3), build_discriminator(cfg.model, 16, 1, 3)
    z, y = torch.randn(8, cfg.model.z_dim), torch.arange(8) % 3
    fake = gen(z, y)
    fake.retain_grad()
    GANObjective(cfg.train, DiffAugment(cfg.train.diffaug, _rng())).g_loss(disc, fake, y).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    grads = [p.grad for p in gen.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    x_real = _batch(1, 8)
    x_real.requires_grad_(True)  # D's loss is differentiable through the augmentation too (and its GP)
    GANObjective(cfg.train, DiffAugment(cfg.train.diffaug, _rng())).d_loss(disc, x_real, y, fake.detach(),
                                                                           y).backward()
    assert x_real.grad is not None and float(x_real.grad.abs().sum()) > 0


def test_classic_augmentation_touches_real_images_only() -> None:
    """In a training step D sees augmented real batches and the generator's own, unaugmented images."""
    dataset = random_dataset(n=30, classes=3)
    cfg = tiny_config(data={"augment": {"rotate": 90.0, "rotate_p": 1.0, "flip": 1.0}},
                      train={"steps": 1, "ema": False})
    state = build_state(cfg, dataset, CPU)
    sampler = DeviceBatchSampler(dataset, cfg.train.batch_size, CPU, state.rng,
                                 augment=ClassicAugment(cfg.data.augment, state.rng))
    seen: list[torch.Tensor] = []
    made: list[torch.Tensor] = []
    state.discriminator.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    state.generator.register_forward_hook(lambda _m, _a, out: made.append(out.detach().clone()))
    train_step(state, GANObjective(cfg.train), sampler.sample, cfg, dataset.num_classes)
    real, fake = seen[0], seen[1]  # the D step: real, then the detached fakes
    assert torch.equal(fake, made[0])  # fakes reach D as the generator made them
    originals = dataset.images.float() / 127.5 - 1
    assert not any(torch.allclose(img, o, atol=1e-3) for img in real for o in originals)  # every real image warped


def test_per_class_keeps_a_fixed_subset_and_the_metrics_keep_every_image() -> None:
    dataset = random_dataset(n=60, classes=3)
    small = dataset.limit_per_class(4)
    assert torch.bincount(small.labels).tolist() == [4, 4, 4]
    assert torch.equal(small.images, dataset.limit_per_class(4).images)  # the same images every run
    assert dataset.limit_per_class(None) is dataset and dataset.limit_per_class(100) is dataset


@pytest.mark.parametrize(("override", "message"), [
    ("data.augment.rotate=-5", r"data\.augment\.rotate: must be >= 0\.0 and <= 180\.0; got -5"),
    ("data.augment.rotate_p=1.5", r"data\.augment\.rotate_p: must be >= 0\.0 and <= 1\.0; got 1\.5"),
    ("data.augment.shear=abc", r"data\.augment\.shear: must be a number"),
    ("data.augment.blur=1", r"data\.augment\.blur: unknown key; allowed: brightness, color_p"),
    ("data.per_class=0", r"data\.per_class: must be >= 1"),
    ("train.diffaug=blur", r"train\.diffaug: must be a comma-separated selection of color, translation, cutout"),
    ("train.diffaug=color,color", r"train\.diffaug: must be a comma-separated selection"),
])
def test_bad_strengths_are_one_line_errors(override: str, message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(ROOT / "configs" / "digits.yaml", [override], label="--set")
    assert main(["train", str(ROOT / "configs" / "digits.yaml"), "--set", override, "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hpsearch: error: ") and not (tmp_path / "run").exists()


def test_the_space_language_chooses_augmentations_and_their_strengths(tmp_path: Path) -> None:
    space = {"params": {"train.diffaug": {"choice": ["", "color,translation,cutout"]},
                        "data.augment.rotate": {"float": [0.0, 30.0]},
                        "data.augment.flip": {"choice": [0.0, 0.5]}}}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    loaded = load_space(path)
    base = {"data": {"name": "digits", "image_size": 16}}
    trial = optuna.trial.FixedTrial({"diffaug": "color,translation,cutout", "rotate": 12.5, "flip": 0.5})
    cfg = loaded.suggest(trial, base, 2)  # type: ignore[arg-type]
    assert cfg.train.diffaug == "color,translation,cutout" and cfg.data.augment.rotate == 12.5
    assert cfg.data.augment.flip == 0.5 and cfg.data.augment.rotate_p == 0.5
    loaded.check(base, 2)
    bad = {"params": {"data.augment.rotate": {"float": [0.0, 300.0]}}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"params\.data\.augment\.rotate\.float\[1\]: must be >= 0\.0 and <= 180"):
        load_space(path)
    path.write_text(yaml.safe_dump({"params": {"data.augment": {"choice": [1, 2]}}}))
    with pytest.raises(ConfigError, match=r"'data\.augment' is not a config key"):
        load_space(path)
    assert from_dict({"data": {"augment": {"rotate": 5}}}).data.augment.rotate == 5.0
