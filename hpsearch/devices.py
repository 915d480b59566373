"""Devices: which one a run uses, which GPUs this process may use, how a trial records its device, and
whether `torch.compile` can work on it.

Apart from training, because the CLI, the workers, GPU packing and the trial record all ask these
questions without training anything.
"""

from __future__ import annotations

import os
import shutil

import torch

from hpsearch.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA when available, else CPU; `cuda` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device: must be auto, cpu or cuda; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda: no CUDA device is available on this machine; use cpu or auto")
    return torch.device(name)


def visible_gpus() -> list[str]:
    """The GPUs `$CUDA_VISIBLE_DEVICES` lists, in CUDA's index order (empty when it is unset or empty)."""
    return [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]


def device_label(device: torch.device) -> str:
    """Where a run trains, as a trial records it: `cpu`, or the CUDA device with its physical GPU and name.

    A worker pinned by `CUDA_VISIBLE_DEVICES=3` sees its GPU as cuda:0; the record names GPU 3, so
    that a slow or failing trial can be traced to the card it ran on.
    """
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = visible_gpus()
    physical = visible[index] if index < len(visible) else str(index)
    return f"cuda:{index} (GPU {physical}, {torch.cuda.get_device_name(index)})"


def check_compile(device: torch.device) -> None:
    """Fail before training when `train.compile` cannot work here: Inductor needs a C++ compiler on the CPU.

    Without one, torch.compile fails only at the first step, deep in a traceback.

    Raises:
        ConfigError: naming what is missing.
    """
    if device.type == "cpu" and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        raise ConfigError("train.compile: torch.compile on the CPU needs a C++ compiler (g++ or clang++), and none "
                          "is on PATH; install one or set train.compile: false")
