"""Generating images from a generator: per-class batches, and rebuilding G from a checkpoint."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpsearch.checkpoint import load_checkpoint
from hpsearch.config import RunConfig, from_dict
from hpsearch.errors import CheckpointError, ConfigError
from hpsearch.images import save_grid, to_uint8
from hpsearch.models import build_generator


def class_labels(num_classes: int, per_class: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels 0,0,…,1,1,…: `per_class` of each class in order (one grid row per class)."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)


@torch.no_grad()
def generate(gen: nn.Module, labels: torch.Tensor, z_dim: int, seed: int = 0, batch_size: int = 512,
             truncation: float = 1.0) -> torch.Tensor:
    """uint8 images (N, C, H, W) for `labels` (N,), in eval mode, reproducible for a seed.

    The generator is put in eval mode for sampling (batch norm uses its running
    statistics) and restored to its previous mode afterwards. The global RNG is forked
    and seeded, so that noise drawn inside the generator (StyleGAN2's noise inputs) is
    reproducible too and a training run's own random stream is left untouched.

    Args:
        truncation: ψ of the truncation trick (generators with a `truncation` argument,
            i.e. stylegan2); 1 = none.

    Raises:
        ConfigError: truncation asked of a generator that has none.
    """
    kwargs = {}
    if truncation != 1.0:
        if "truncation" not in inspect.signature(gen.forward).parameters:
            raise ConfigError(f"truncation {truncation}: only stylegan2 generators have the truncation trick")
        kwargs["truncation"] = truncation
    was_training = gen.training
    gen.eval()
    devices = [labels.device] if labels.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        rng = torch.Generator(device=labels.device).manual_seed(seed)
        out = []
        for chunk in labels.split(batch_size):
            z = torch.randn(chunk.shape[0], z_dim, device=labels.device, generator=rng)
            out.append(to_uint8(gen(z, chunk, **kwargs)))
    gen.train(was_training)
    return torch.cat(out)


def save_class_grid(gen: nn.Module, num_classes: int, per_class: int, z_dim: int, seed: int,
                    device: torch.device, path: Path) -> None:
    """Write a PNG grid with one row of `per_class` samples per class (2× upscaled for viewing)."""
    labels = class_labels(num_classes, per_class, device)
    save_grid(generate(gen, labels, z_dim, seed=seed), per_class, path, scale=2)


@dataclass
class LoadedGenerator:
    """A generator rebuilt from a checkpoint, with what is needed to sample from it."""

    generator: nn.Module
    config: RunConfig
    class_names: list[str]
    step: int


def load_generator(path: Path, device: torch.device, use_ema: bool = True) -> LoadedGenerator:
    """Rebuild the generator of a training checkpoint (the EMA weights when there are some).

    Raises:
        CheckpointError: unreadable checkpoint or a config it cannot be rebuilt from.
    """
    payload = load_checkpoint(path)
    try:
        cfg = from_dict(payload["config"], f"{path}:config")
        names = list(payload["class_names"])
        shape = payload["image_shape"]
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the generator ({exc})") from exc
    gen = build_generator(cfg.model, cfg.data.image_size, int(shape[0]), len(names))
    state = payload["ema"] if use_ema and payload.get("ema") is not None else payload["generator"]
    gen.load_state_dict(state)
    return LoadedGenerator(gen.to(device).eval(), cfg, names, int(payload["step"]))
