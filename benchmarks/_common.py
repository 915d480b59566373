"""What the benchmark scripts share: the result file, the hypermodel and data of the speed benchmarks, timing."""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write `result` as indented JSON to `path` (its folder created); nothing when `path` is None.

    Infinite and NaN floats ("never reached", "no ratio") are written as null: Python would write
    `Infinity`, which strict JSON readers (jq, JavaScript) refuse.
    """
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_finite(result), indent=2, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def hypermodel_config(image_size: int = 32, width: float = 1.0, batch: int = 64, family: str = "dcgan",
                      **train: Any) -> Any:
    """The Table I/II hypermodel the speed benchmarks share: CBN (linear) + projection with spectral norm in D,
    hinge loss, 256 dense channels, z 128, no EMA (it costs the same in every loop compared).

    `train` overrides fields of the train section (amp, channels_last, compile).
    """
    from hpsearch.config import from_dict

    extra = {"g_attention": image_size} if family == "sagan" else {}
    return from_dict({
        "data": {"name": "cifar10", "image_size": image_size, "hflip": True},
        "model": {"generator": family, "g_width": width, "d_width": width, "dense_channels": 256,
                  "z_dim": 128, "g_cond": "cbn_linear", "d_cond": "projection", "d_spectral_norm": True, **extra},
        "train": {"batch_size": batch, "loss": "hinge", "ema": False, **train},
    }, "<benchmark>")


def random_images(n: int, image_size: int, channels: int = 3, classes: int = 10) -> Any:
    """Seeded random uint8 images with labels: speed does not depend on content, and nothing is downloaded."""
    import torch

    from hpsearch.data import ImageDataset

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, image_size, image_size), dtype=torch.uint8, generator=g)
    return ImageDataset(images, torch.randint(0, classes, (n,), generator=g), [str(i) for i in range(classes)])


def timed(run: Callable[[int], None], steps: int, device: Any) -> float:
    """Seconds `run(steps)` takes, the device synchronized before and after."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def machine(device: Any) -> str:
    """The GPU's name, or the processor and torch's thread count."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def training_loop(cfg: Any, data: Any, device: Any) -> Callable[[int], None]:
    """`run(steps)`: that many steps of the hpsearch loop on `cfg` (device-resident batches with flips, cfg's
    autocast and memory format), from a fresh seeded state."""
    from hpsearch.data import DeviceBatchSampler
    from hpsearch.losses import GANObjective
    from hpsearch.training import build_state, train_step

    state = build_state(cfg, data, device)
    cl = device.type == "cuda" and cfg.train.channels_last
    sampler = DeviceBatchSampler(data, cfg.train.batch_size, device, state.rng, hflip=True, channels_last=cl)
    objective = GANObjective(cfg.train)

    def run(steps: int) -> None:
        for _ in range(steps):
            train_step(state, objective, sampler.sample, cfg, data.num_classes)

    return run


def digits_study(path: Path, name: str, storage: str, outputs: Path, trials: int, *, enqueue: bool = True,
                 base: dict[str, dict[str, Any]] | None = None, sampler: dict[str, Any] | None = None,
                 pruner: dict[str, Any] | None = None) -> Path:
    """Write `studies/digits_quick.yaml` as study `name` on the tiny space to `path`, and return it.

    It runs `trials` trials on `storage`, with artifacts and trial folders under `outputs`; `base` updates
    sections of the base config (e.g. `{"train": {"steps": 300}}`), `sampler` updates the sampler,
    `pruner` replaces the pruner; without `enqueue` the known best first trial is dropped.
    """
    import yaml

    root = Path(__file__).resolve().parents[1]
    study = yaml.safe_load((root / "studies" / "digits_quick.yaml").read_text())
    if not enqueue:
        study.pop("enqueue", None)
    for section, values in (base or {}).items():
        study["base"][section] = {**study["base"].get(section, {}), **values}
    study.update({"study": name, "space": str(root / "search_spaces" / "tiny.yaml"), "stop": {"n_trials": trials},
                  "storage": storage, "artifacts": str(outputs / "artifacts"), "runs_dir": str(outputs / "trials"),
                  "sampler": {**study["sampler"], **(sampler or {})}, "pruner": pruner or study["pruner"]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path
