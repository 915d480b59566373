"""Typed, strict run configs (data, model, train) loaded from YAML with `--set` overrides.

Every choice a search will make is a field here, so that a configuration proposed by
a sampler is validated exactly like one written by hand (`hpsearch.validation`: driven by the
type hints plus a little metadata, so adding a field means declaring it once). YAML is read
by `hpsearch.io.read_yaml`; this module adds the checks that tie fields together.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hpsearch.errors import ConfigError
from hpsearch.io import check_text, check_tree, parse_yaml, read_yaml
from hpsearch.validation import Where, build_dataclass, check_keys, option, unit

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "image_folder"]
GeneratorName = Literal["dcgan", "sagan", "stylegan2"]
GeneratorConditioning = Literal["concat", "hidden_concat", "cbn_embedding", "cbn_linear"]
DiscriminatorConditioning = Literal["projection", "concat", "hidden_concat", "acgan"]
LossName = Literal["hinge", "bce", "wgan_gp"]
FeatureExtractorName = Literal["domain", "inception"]
# What a study minimizes and a run keeps its best generator by (hpsearch.metrics.OBJECTIVES says what each is).
ObjectiveName = Literal["class_fid", "fid", "class_kid", "kid"]

KERNEL_SIZES = (3, 4, 5)
ATTENTION_RESOLUTIONS = (4, 8, 16, 32, 64)
IMAGE_SIZES = (16, 32, 64)
BLOCKS = {size: size.bit_length() - 3 for size in IMAGE_SIZES}  # 4×4 doubled this many times: 16 → 2, 64 → 4
MAX_BLOCKS = max(BLOCKS.values())
MAX_SLOPE = 0.3
MAX_STEPS = 10**9  # bounded so that step counters and schedules stay exact integers everywhere
MAX_SEED = 2**31 - 1  # every RNG hpsearch seeds (torch, numpy, Optuna's samplers) accepts it
COLLAPSE_MARGIN = 0.2  # metrics.collapse_margin default; measured in benchmarks/collapse_margin.py
COLLAPSE_DENSITY_RATIO = 2.5  # metrics.collapse_density_ratio default; measured in benchmarks/collapse_margin.py


@dataclass
class AugmentConfig:
    """Classic augmentation of the real images, the second paper's recipe (section 6), on the device.

    Each op is applied to each image independently with its probability (`*_p`) at a random
    strength up to its maximum; 0 (the default) turns an op off. Only real images are
    augmented, from the run's RNG, so batches are reproducible and resume exactly.

    Attributes:
        flip: probability of a horizontal flip.
        rotate, rotate_p: maximum rotation in degrees (uniform in ±rotate), and its probability.
        shear, shear_p: maximum skew in degrees along x and along y (each uniform in ±shear).
        translate, translate_p: maximum shift along x and y, as a fraction of the side.
        brightness: maximum brightness shift, as a fraction of the value range (uniform in ±).
        contrast: maximum contrast change: each image's deviations from its mean scaled by U(1 ± contrast).
        saturation: maximum saturation change (RGB only): deviations from the grey value scaled by U(1 ± s).
        color_p: probability of the colour jitter (brightness, contrast, saturation together).
    """

    flip: float = unit(0.0)
    rotate: float = option(0.0, ge=0.0, le=180.0)
    rotate_p: float = unit(0.5)
    shear: float = option(0.0, ge=0.0, le=45.0)
    shear_p: float = unit(0.5)
    translate: float = option(0.0, ge=0.0, le=0.5)
    translate_p: float = unit(0.5)
    brightness: float = unit(0.0)
    contrast: float = unit(0.0)
    saturation: float = unit(0.0)
    color_p: float = unit(0.5)


@dataclass
class DataConfig:
    """Which dataset, at which resolution.

    Attributes:
        name: dataset registry name.
        image_size: square side in pixels; fixes the number of up/down blocks (16→2, 32→3, 64→4).
        root: folder of class sub-folders, for `image_folder` only.
        channels: 1 (grey) or 3 (RGB); `image_folder` converts to it, others have their own.
        hflip: random horizontal flips on the device (wrong for digits, fine for CIFAR).
        download: fetch missing raw files from the official locations (off: only use
            files already in the data directory).
        augment: classic augmentation of the real training images (see AugmentConfig).
        per_class: train on at most this many images per class (chosen with a fixed seed, the
            same for every run), for limited-data studies; the metrics still use every image.
    """

    name: DatasetName = "digits"
    image_size: int = option(32, choices=IMAGE_SIZES)
    root: str | None = None
    channels: int = option(3, choices=(1, 3))
    hflip: bool = False
    download: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    per_class: int | None = option(None, ge=1, le=10_000_000)


@dataclass
class ModelConfig:
    """The Table I / Table II hypermodel and its conditioning.

    Per-layer fields (`*_kernels`, `*_slopes`) accept one value for every layer or a list
    with one value per up/down block; after loading they are always lists.

    Attributes:
        generator: generator family: `dcgan` (Table I), `sagan` (Table I with spectral norm on
            every layer of G and self-attention at `g_attention`), `stylegan2` (small: mapping
            network, learned constant, modulated convolutions, noise, style mixing; the label
            enters through the mapping network, so `g_cond` and the Table I fields
            `g_kernels`, `g_slopes`, `g_hidden_layer` do not apply to it).
        z_dim: latent size (the paper searches 50–300).
        dense_channels: channels c0 of the 4×4 map after the dense layer (paper: 10–512).
        g_width: multiplier of the up-block channels (512, 256, 128 at width 1).
        g_kernels: transposed-conv kernel per up-block, 3, 4 or 5 (output always doubles).
        g_slopes: leaky-ReLU slope per up-block, 0 (ReLU) to 0.3.
        g_cond: how the label enters the generator.
        g_hidden_layer: for `hidden_concat`: before which up-block (0 = the 4×4 map,
            n_blocks = before the output conv) the embedding is concatenated.
        embed_dim: class-embedding size for concat, hidden concat and `cbn_linear`.
        g_spectral_norm: spectral norm on every conv, linear and embedding of G.
        d_width: multiplier of the discriminator channels (128, 256, 512 at width 1).
        d_kernels: conv kernel per down-block, 3, 4 or 5.
        d_slopes: leaky-ReLU slope per down-block.
        d_cond: how the label enters the discriminator.
        d_hidden_layer: for `hidden_concat`: after which down-block, before the next one
            (1..n_blocks-1).
        d_spectral_norm: spectral norm on every conv, linear and embedding of D.
        g_attention: resolution after whose up-block G applies self-attention (8..image_size),
            or "none"; `sagan` needs one. Ignored by `stylegan2`.
        d_attention: resolution after whose down-block D applies self-attention
            (4..image_size/2), or "none".
        w_dim: `stylegan2`: size of the intermediate latent w (and of each style's input).
        mapping_layers: `stylegan2`: depth of the mapping MLP.
        style_mixing: `stylegan2`: probability that a training batch mixes two w at a random
            layer (style-mixing regularization); 0 = never.
    """

    generator: GeneratorName = "dcgan"
    z_dim: int = option(128, ge=1, le=1024)
    dense_channels: int = option(256, ge=1, le=2048)
    g_width: float = option(1.0, gt=0.0, le=4.0)
    g_kernels: int | list[int] = option(4, choices=KERNEL_SIZES)
    g_slopes: float | list[float] = option(0.0, ge=0.0, le=MAX_SLOPE)
    g_cond: GeneratorConditioning = "cbn_linear"
    g_hidden_layer: int = option(1, ge=0, le=MAX_BLOCKS)  # 0 = the 4×4 map; the image size bounds it further
    embed_dim: int = option(32, ge=1, le=1024)
    g_spectral_norm: bool = False
    d_width: float = option(1.0, gt=0.0, le=4.0)
    d_kernels: int | list[int] = option(4, choices=KERNEL_SIZES)
    d_slopes: float | list[float] = option(0.2, ge=0.0, le=MAX_SLOPE)
    d_cond: DiscriminatorConditioning = "projection"
    d_hidden_layer: int = option(1, ge=1, le=MAX_BLOCKS - 1)  # after a down-block, never the last
    d_spectral_norm: bool = True
    g_attention: int | Literal["none"] = option("none", choices=ATTENTION_RESOLUTIONS)
    d_attention: int | Literal["none"] = option("none", choices=ATTENTION_RESOLUTIONS)
    w_dim: int = option(256, ge=8, le=1024)
    mapping_layers: int = option(4, ge=1, le=8)
    style_mixing: float = unit(0.9)


@dataclass
class TrainConfig:
    """The training recipe.

    Attributes:
        steps: generator steps.
        batch_size: images per discriminator and generator step.
        n_dis: discriminator steps per generator step.
        g_lr, d_lr: Adam learning rates (TTUR when they differ).
        g_betas, d_betas: Adam betas.
        loss: adversarial loss.
        real_label: target for real images in `bce` (one-sided label smoothing; 1 = none).
        gp_weight: gradient-penalty weight λ for `wgan_gp`.
        acgan_weight: weight of the auxiliary-classifier cross-entropy (d_cond `acgan`).
        ema: keep an exponential moving average of G for sampling.
        ema_decay: EMA decay per step.
        ema_warmup: ramp the EMA decay up as min(ema_decay, (1 + step) / (10 + step)), so
            that early evaluations score the trained generator rather than its random initialization.
        seed: seeds model init, noise, labels and batches.
        amp: bf16 autocast (CUDA only; ignored on CPU).
        channels_last: channels-last memory format (CUDA only).
        compile: `torch.compile` the generator and the discriminator (each module once; the
            optimizers stay eager: fused Adam on CUDA is one kernel already). It pays only for
            long trials: compiling costs seconds to minutes up front (benchmarks/README.md,
            `compile_cost.py`). Not with loss `wgan_gp`: its gradient penalty needs a double
            backward, which torch.compile does not support.
        log_every: steps between metrics-log lines (and the divergence check).
        eval_every: steps between evaluation callbacks.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        grid_per_class: samples per class row in the sample grid.
        diffaug: DiffAugment policy (Zhao et al., 2020): comma-separated ops out of `color`,
            `translation`, `cutout`, applied differentiably to every batch the discriminator
            sees, real and generated, in every loss ("" = none).
    """

    steps: int = option(2000, ge=1, le=MAX_STEPS)
    batch_size: int = option(64, ge=1, le=8192)
    n_dis: int = option(1, ge=1, le=20)
    g_lr: float = option(2e-4, gt=0.0, le=1.0)
    d_lr: float = option(2e-4, gt=0.0, le=1.0)
    g_betas: list[float] = option([0.0, 0.9], ge=0.0, lt=1.0, length=2)
    d_betas: list[float] = option([0.0, 0.9], ge=0.0, lt=1.0, length=2)
    loss: LossName = "hinge"
    real_label: float = option(0.9, gt=0.0, le=1.0)
    gp_weight: float = option(10.0, ge=0.0, le=1e4)
    acgan_weight: float = option(1.0, ge=0.0, le=1e4)
    ema: bool = True
    ema_decay: float = option(0.999, ge=0.0, lt=1.0)
    ema_warmup: bool = True
    seed: int = option(0, ge=0, le=MAX_SEED)
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    log_every: int = option(50, ge=1, le=MAX_STEPS)
    eval_every: int = option(500, ge=1, le=MAX_STEPS)
    checkpoint_every: int = option(500, ge=1, le=MAX_STEPS)
    grid_per_class: int = option(8, ge=1, le=64)
    diffaug: str = ""


@dataclass
class MetricsConfig:
    """What every evaluation measures, on one generated batch.

    Attributes:
        enabled: run the metrics at every evaluation (FID, class FID, accuracy, MS-SSIM).
        features: FID features: `domain` (a small classifier trained once on the real
            training images; offline, fast) or `inception` (the standard FID network, needs
            torch-fidelity and its weights). Numbers are not comparable across the two.
        inception_weights: a local `pt_inception-2015-12-05-6726825d.pth` for `inception`.
        samples: generated images per evaluation (split evenly over the classes).
        real_samples: real images for the reference statistics (at most; all if fewer).
        msssim_pairs: random same-class pairs per class for MS-SSIM.
        classifier_steps: training steps of the domain classifier (batch 128, Adam).
        collapse_margin: an evaluation is flagged `collapse` when its generated within-class
            MS-SSIM exceeds the real images' by more than this (see benchmarks/README.md,
            "collapse margin", for how it was measured).
        kid_subsets: KID (and class KID) is the mean unbiased MMD² over this many random subsets.
        kid_subset_size: images per KID subset a side, for KID and class KID alike; none (default):
            the smaller of the two sets compared (overall, or one class's), at most 1,000. Set, it
            may not exceed one class's generated or real images (checked at load).
        prdc_k: the k of the k-nearest-neighbour balls of precision, recall, density and coverage.
        collapse_density_ratio: an evaluation is also flagged `collapse` when some class's density
            exceeds its coverage by more than this factor: its samples pile up in the neighbourhoods
            of a few of its real images and miss the rest (an absolute coverage floor cannot tell
            that from an untrained generator, whose coverage is as low; see benchmarks/README.md).
    """

    enabled: bool = True
    features: FeatureExtractorName = "domain"
    inception_weights: str | None = None
    samples: int = option(1000, ge=2, le=200_000)
    real_samples: int = option(10_000, ge=2, le=10_000_000)
    msssim_pairs: int = option(50, ge=1, le=10_000)
    classifier_steps: int = option(1000, ge=1, le=MAX_STEPS)
    collapse_margin: float = unit(COLLAPSE_MARGIN)
    kid_subsets: int = option(100, ge=1, le=10_000)
    kid_subset_size: int | None = option(None, ge=2, le=200_000)
    prdc_k: int = option(3, ge=1, le=100)
    collapse_density_ratio: float = option(COLLAPSE_DENSITY_RATIO, gt=1.0, le=1000.0)


@dataclass
class RunConfig:
    """One training run: the sections of a config YAML."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML- and checkpoint-safe dict of the resolved config."""
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                             "metrics": MetricsConfig}
PER_LAYER_FIELDS = ("g_kernels", "g_slopes", "d_kernels", "d_slopes")


def per_layer(value: Any) -> list[Any]:
    """A per-layer field of a loaded config (always a list after `_resolve`)."""
    if not isinstance(value, list):
        raise TypeError("per-layer field not resolved; load configs with load_config or from_dict")
    return value


def num_blocks(image_size: int) -> int:
    """Up-blocks in G (= down-blocks in D) that take 4×4 to `image_size`."""
    return BLOCKS[image_size]


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path | None, overrides: list[str] | None = None, label: str = "override") -> RunConfig:
    """Load a YAML run config, apply `section.key=value` overrides, validate everything.

    Args:
        path: YAML file with optional `data`, `model`, `train`, `metrics` sections; None for defaults.
        overrides: strings like `model.d_cond=projection` (values parsed as YAML).
        label: what the errors call an override (the CLI says which flag gave it).

    Raises:
        ConfigError: naming the file, the key, the value given and what is allowed.
    """
    source = str(path) if path is not None else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(Path(path))
    for item in overrides or []:
        _apply_override(raw, item, label)
    return from_dict(raw, source)


def from_dict(raw: Any, source: str = "<dict>") -> RunConfig:
    """Validate a nested dict (as from YAML or a stored trial) into a RunConfig."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping with sections {sorted(SECTIONS)}")
    check_keys(raw, SECTIONS, Where(source))
    sections = {}
    for name, cls in SECTIONS.items():
        body = raw.get(name)
        body = {} if body is None else body  # `model:` with nothing under it; false, 0 or [] are not mappings
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: {name}: must be a mapping; got {body!r}")
        sections[name] = build_dataclass(cls, body, source, name)
    cfg = RunConfig(**sections)
    _resolve(cfg, source)
    return cfg


def _apply_override(raw: dict[str, Any], item: str, label: str) -> None:
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"{label} {item!r}: expected section.key=value, e.g. model.d_cond=projection "
                          "(or section.group.key=value, e.g. data.augment.rotate=15)")
    if parts[0] not in SECTIONS:
        raise ConfigError(f"{label} {key}: unknown section {parts[0]!r}; choose from {sorted(SECTIONS)}")
    try:
        value = parse_yaml(text, "")
    except ConfigError as exc:
        raise ConfigError(f"{label} {key}: value {text[:100]!r} is not valid YAML") from exc
    check_tree(value, f"{label} {key}")  # the same alias-bomb and size limits as a file
    body = raw
    for depth, part in enumerate(parts[:-1]):
        child = body.setdefault(part, {})
        child = {} if child is None else child
        if not isinstance(child, dict):
            raise ConfigError(f"{label} {key}: {'.'.join(parts[:depth + 1])} in the file is not a mapping")
        body[part] = child
        body = child
    body[parts[-1]] = value


def section_class(path: str) -> type | None:
    """The config dataclass at a dotted section path (`model`, `data.augment`); None when there is none."""
    first, *rest = path.split(".")
    cls: Any = SECTIONS.get(first)
    for part in rest:
        fields = {f.name: f for f in dataclasses.fields(cls)} if cls is not None else {}
        tp = typing.get_type_hints(cls).get(part) if part in fields else None
        cls = tp if dataclasses.is_dataclass(tp) else None
    return cls


# --------------------------------------------------------------------------- cross-field checks


DIFFAUG_NAMES = ("color", "translation", "cutout")  # the DiffAugment ops (hpsearch.augment implements them)


def diffaug_ops(policy: str, where: str = "train.diffaug") -> list[str]:
    """The ops of a DiffAugment policy string ("" → none).

    Raises:
        ConfigError: an unknown or repeated op, naming the allowed ones.
    """
    ops = [op.strip() for op in policy.split(",")] if policy.strip() else []
    if any(op not in DIFFAUG_NAMES for op in ops) or len(set(ops)) != len(ops):
        raise ConfigError(f"{where}: must be a comma-separated selection of {', '.join(DIFFAUG_NAMES)} (each at "
                          f"most once; empty for none); got {policy!r}")
    return ops


def _resolve(cfg: RunConfig, source: str) -> None:
    """Checks that need several fields; expands per-layer values to one per block."""
    n = num_blocks(cfg.data.image_size)
    model = cfg.model
    for name in PER_LAYER_FIELDS:
        value = getattr(model, name)
        if not isinstance(value, list):
            value = [value] * n
        elif len(value) != n:
            raise ConfigError(
                f"{source}: model.{name}: needs one value per block ({n} at image_size "
                f"{cfg.data.image_size}) or a single value; got {len(value)} values {value!r}"
            )
        setattr(model, name, value)
    if model.g_cond == "hidden_concat" and not 0 <= model.g_hidden_layer <= n:
        raise ConfigError(
            f"{source}: model.g_hidden_layer: must be in 0..{n} at image_size "
            f"{cfg.data.image_size}; got {model.g_hidden_layer}"
        )
    if model.d_cond == "hidden_concat" and not 1 <= model.d_hidden_layer <= n - 1:
        raise ConfigError(
            f"{source}: model.d_hidden_layer: must be in 1..{n - 1} at image_size "
            f"{cfg.data.image_size}; got {model.d_hidden_layer}"
        )
    _check_attention(cfg, source)
    if cfg.train.compile and cfg.train.loss == "wgan_gp":
        raise ConfigError(f"{source}: train.compile: cannot be used with train.loss wgan_gp (its gradient "
                          "penalty differentiates twice, which torch.compile does not support); use hinge or bce, "
                          "or compile: false")
    diffaug_ops(cfg.train.diffaug, f"{source}: train.diffaug")
    if cfg.data.name == "image_folder" and not cfg.data.root:
        raise ConfigError(f"{source}: data.root: required for data.name image_folder (a folder of class sub-folders)")
    if cfg.data.root is not None:
        check_text(cfg.data.root, f"{source}: data.root", "a folder of class sub-folders")


def _check_attention(cfg: RunConfig, source: str) -> None:
    """Attention resolutions must exist in the network: G's up-blocks make 8..size, D's down-blocks size/2..4."""
    size, model = cfg.data.image_size, cfg.model
    g_allowed = [r for r in ATTENTION_RESOLUTIONS if 8 <= r <= size]
    d_allowed = [r for r in ATTENTION_RESOLUTIONS if 4 <= r <= size // 2]
    if model.generator == "sagan" and model.g_attention == "none":
        raise ConfigError(f"{source}: model.g_attention: generator sagan needs an attention resolution, one of "
                          f"{g_allowed} at image_size {size}; got 'none'")
    if model.g_attention != "none" and model.g_attention not in g_allowed:
        raise ConfigError(f"{source}: model.g_attention: must be 'none' or one of {g_allowed} at image_size {size}; "
                          f"got {model.g_attention}")
    if model.d_attention != "none" and model.d_attention not in d_allowed:
        raise ConfigError(f"{source}: model.d_attention: must be 'none' or one of {d_allowed} at image_size {size}; "
                          f"got {model.d_attention}")


def replace_sections(cfg: RunConfig, **sections: Mapping[str, Any]) -> RunConfig:
    """A copy of `cfg` with some fields of some sections changed, e.g. `train={"seed": 7}` (no re-validation:
    for values the caller has checked, such as a seed or a sample count)."""
    changed = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **changed)


def dump_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config as YAML (atomic), so every run records what it ran."""
    from hpsearch.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
