"""One training run with its evaluations and sample grids: the same for `hpsearch train` and for a search's trial.

`training.train` is the loop; this wires what every run adds to it: the evaluator (FID,
class FID, accuracy, MS-SSIM), a per-class sample grid at each evaluation
(`train.grid_per_class` per class, also copied to `samples.png`), and the caller's own
callbacks, which see the metrics in the record they are handed. It knows nothing of Optuna.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from hpsearch.config import RunConfig
from hpsearch.data import ImageDataset
from hpsearch.io import atomic_write
from hpsearch.metrics import Evaluator
from hpsearch.sampling import save_class_grid
from hpsearch.training import EvalCallback, train

LATEST_GRID = "samples.png"


def grid_path(out: Path, step: int) -> Path:
    """Where the sample grid of the evaluation at `step` is written."""
    return out / "samples" / f"step_{step:07d}.png"


def run_training(cfg: RunConfig, dataset: ImageDataset, out: Path, device: torch.device, cache_dir: Path, *,
                 resume: bool = False, metrics: bool | None = None, on_eval: Sequence[EvalCallback] = (),
                 on_grid: Callable[[int, Path], None] | None = None, stop: Callable[[], bool] | None = None,
                 progress: bool = True) -> None:
    """Train `cfg` into `out` (checkpoint, metrics log, grids), evaluating and drawing grids every `eval_every` steps.

    Args:
        cache_dir: shared cache of the domain classifier and the reference statistics.
        resume: continue from the checkpoint in `out`.
        metrics: evaluate (default: `cfg.metrics.enabled`); a search always does, its objective is a metric.
        on_eval: called after the evaluator and the grid, with the metrics in the record; may raise to stop.
        on_grid: called with each grid's step and path once it is written (a search uploads it).
        stop: polled between steps (a graceful stop checkpoints and raises TrainingInterrupted).

    Raises:
        TrainingDiverged, TrainingInterrupted, CheckpointError: from the loop.
    """
    callbacks: list[EvalCallback] = []
    if cfg.metrics.enabled if metrics is None else metrics:
        callbacks.append(Evaluator(cfg, dataset, device, cache_dir))

    def write_grid(step: int, generator: nn.Module, _record: object) -> None:  # small; metrics use their own batch
        path = grid_path(out, step)
        save_class_grid(generator, dataset.num_classes, cfg.train.grid_per_class, cfg.model.z_dim, cfg.train.seed,
                        device, path)
        atomic_write(out / LATEST_GRID, lambda fh: fh.write(path.read_bytes()))
        if on_grid is not None:
            on_grid(step, path)

    train(cfg, dataset, out, device, resume=resume, on_eval=[*callbacks, write_grid, *on_eval], progress=progress,
          stop=stop)
