"""Generating images from a generator: per-class batches, and rebuilding G from a checkpoint."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpsearch.checkpoint import BEST_GENERATOR, CHECKPOINT_NAME, load_checkpoint
from hpsearch.config import RunConfig, from_dict
from hpsearch.errors import CheckpointError, ConfigError, reason
from hpsearch.images import save_grid, to_uint8
from hpsearch.models import build_generator


def class_labels(num_classes: int, per_class: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels 0,0,…,1,1,…: `per_class` of each class in order (one grid row per class)."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)


GENERATION_BATCH = 512  # images generated per forward pass: an evaluation's peak memory is set by it


@torch.no_grad()
def generate(gen: nn.Module, labels: torch.Tensor, z_dim: int, seed: int = 0, batch_size: int = GENERATION_BATCH,
             truncation: float = 1.0) -> torch.Tensor:
    """uint8 images (N, C, H, W) for `labels` (N,), in eval mode, reproducible for a seed.

    Sampling runs under `seeded_eval`: batch norm uses its running statistics, and the
    generator's own noise is reproducible without disturbing a training run's RNG.

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
    with seeded_eval(gen, seed, labels.device):
        rng = torch.Generator(device=labels.device).manual_seed(seed)
        out = []
        for chunk in labels.split(batch_size):
            z = torch.randn(chunk.shape[0], z_dim, device=labels.device, generator=rng)
            out.append(to_uint8(gen(z, chunk, **kwargs)))
    return torch.cat(out)


@contextlib.contextmanager
def seeded_eval(gen: nn.Module, seed: int, device: torch.device) -> Iterator[None]:
    """`gen` in eval mode with the global RNG forked and seeded, both restored afterwards.

    Noise drawn inside the generator (StyleGAN2's noise inputs) is then reproducible for a
    seed, and a training run's own random stream and the generator's mode are untouched.
    """
    was_training = gen.training
    gen.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield
    finally:
        gen.train(was_training)


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


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file as given, or in a run or export folder the generator its value describes:
    `best_generator.pt` (the best evaluation's) when there is one, else `checkpoint.pt` (the last)."""
    if not path.is_dir():
        return path
    for name in (BEST_GENERATOR, CHECKPOINT_NAME):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{path}: a folder without {BEST_GENERATOR} or {CHECKPOINT_NAME}; give a checkpoint file, "
                          "or a run or export folder")


def load_generator(path: Path, device: torch.device, use_ema: bool = True) -> LoadedGenerator:
    """Rebuild the generator of a checkpoint (the EMA weights when there are some).

    Reads both a training checkpoint and a best-generator file (the sampling generator of a
    run's best evaluation, alone); a folder stands for its best generator (`resolve_checkpoint`).

    Raises:
        CheckpointError: unreadable checkpoint or a config it cannot be rebuilt from; the raw
            generator asked of a best-generator file that holds only the EMA.
    """
    path = resolve_checkpoint(path)
    payload = load_checkpoint(path)
    if not use_ema and payload.get("kind") == "generator" and payload.get("sampling") == "ema":
        raise CheckpointError(f"{path}: holds only the EMA generator of the run's best evaluation; the raw "
                              f"generator is in the run's last checkpoint ({CHECKPOINT_NAME})")
    try:
        cfg = from_dict(payload["config"], f"{path}:config")
        names = [str(n) for n in payload["class_names"]]
        shape = payload["image_shape"]
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the generator ({exc})") from exc
    try:
        gen = build_generator(cfg.model, cfg.data.image_size, int(shape[0]), len(names))
        state = payload["ema"] if use_ema and payload.get("ema") is not None else payload["generator"]
        gen.load_state_dict(state)
        step = int(payload["step"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:  # RuntimeError: shapes differ
        raise CheckpointError(f"{path}: its weights do not match its own config ({type(exc).__name__}: "
                              f"{reason(exc, 300)}); the file is damaged or was edited") from exc
    return LoadedGenerator(gen.to(device).eval(), cfg, names, step)


def check_same_classes(trained: list[str], now: list[str], checkpoint: Path) -> None:
    """The dataset a checkpoint is evaluated or resumed on must have the classes it was trained on.

    Raises:
        CheckpointError: naming both class lists (shortened).
    """
    if list(trained) != list(now):
        raise CheckpointError(f"{checkpoint}: trained on {len(trained)} classes {_short(trained)}, but the dataset "
                              f"now has {len(now)} classes {_short(now)}; use the dataset it was trained on")


def _short(names: list[str]) -> str:
    return str(list(names)) if len(names) <= 6 else f"[{', '.join(map(repr, names[:5]))}, ...]"
