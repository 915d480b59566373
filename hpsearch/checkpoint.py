"""Atomic checkpoints that resume exactly, loaded safely (`weights_only=True`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from hpsearch.errors import CheckpointError, reason
from hpsearch.io import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"  # the last training state: what a run resumes from
BEST_GENERATOR = "best_generator.pt"  # the sampling generator of a run's best evaluation (hpsearch.runner)
FORMAT_VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (tensors, state dicts, plain Python values) atomically to `path`."""
    buffer = io.BytesIO()  # torch.save's own writer turns a full disk into a RuntimeError ("unexpected pos")
    torch.save({"format": FORMAT_VERSION, **payload}, buffer)
    atomic_write(path, lambda fh: fh.write(buffer.getbuffer()))  # ... a plain write, into an OSError naming path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; no arbitrary code is unpickled.

    Raises:
        CheckpointError: missing, unreadable, or not an hpsearch checkpoint.
    """
    if not Path(path).exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: not a file (a checkpoint.pt is expected)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt, truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason(exc)}); it is damaged or not one "
                              "hpsearch wrote") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not an hpsearch checkpoint (format {FORMAT_VERSION})")
    return payload
