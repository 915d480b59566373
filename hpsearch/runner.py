"""One training run with its evaluations, sample grids and best generator: the same for `hpsearch train` and a trial.

`training.train` is the loop; this wires what every run adds to it: the evaluator (FID,
class FID, accuracy, MS-SSIM), a per-class sample grid at each evaluation
(`train.grid_per_class` per class, also copied to `samples.png`), the generator of the best
evaluation so far, and the caller's own callbacks, which see the metrics in the record they
are handed. It knows nothing of Optuna.

The best generator: GANs often get worse after their best step, so the value a run reports
must be that of a generator it keeps. At each evaluation that improves the objective, the
sampling generator (the EMA when on) is saved to `best_generator.pt` — the generator's
weights, config and classes, not the optimizers — beside the last checkpoint, which stays
the one to resume from. A resumed run starts from the value stored in that file.

`remeasure` scores a kept generator again on batches drawn with other seeds: the value
that chose it is the minimum over evaluations, biased low by their noise, and the spread of
the new scores is the objective's own noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpsearch.checkpoint import BEST_GENERATOR, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from hpsearch.config import RunConfig, replace_sections
from hpsearch.data import ImageDataset
from hpsearch.devices import check_compile
from hpsearch.errors import CheckpointError, ConfigError
from hpsearch.generation import load_generator, save_class_grid
from hpsearch.io import atomic_write, mark_owned, owned_by
from hpsearch.metrics import Evaluator, check_features
from hpsearch.seeds import derived_seed
from hpsearch.training import CONFIG_NAME, METRICS_LOG, EvalCallback, check_same_run, train

_logger = logging.getLogger(__name__)
LATEST_GRID = "samples.png"
# Everything a run writes into its folder (`hpsearch.training` adds the log and the config): a command
# that would write a run into a folder holding any of these refuses, rather than replace them.
RUN_FILES = (CHECKPOINT_NAME, BEST_GENERATOR, METRICS_LOG, CONFIG_NAME, LATEST_GRID, "samples")


def grid_path(out: Path, step: int) -> Path:
    """Where the sample grid of the evaluation at `step` is written."""
    return out / "samples" / f"step_{step:07d}.png"


@dataclass
class Best:
    """The best evaluation of a run so far: its objective, value and step (step 0: none yet)."""

    objective: str
    value: float = math.inf
    step: int = 0


class BestKeeper:
    """Evaluation callback: saves the sampling generator whenever the objective improves (see the module docstring).

    Args:
        objective: the metric to minimize (one of hpsearch.metrics.OBJECTIVES).
        cfg, dataset: stored with the generator so that it can be rebuilt and checked alone.
        out: the run folder.
        resume: start from the best stored in `out` by an earlier attempt.
    """

    def __init__(self, objective: str, cfg: RunConfig, dataset: ImageDataset, out: Path, resume: bool) -> None:
        self.path, self.cfg, self.dataset = out / BEST_GENERATOR, cfg, dataset
        self.best = Best(objective)
        if resume and self.path.is_file():
            self.best = _stored_best(self.path, objective, cfg, dataset)

    def __call__(self, step: int, generator: nn.Module, record: Mapping[str, Any]) -> None:
        value = record.get(self.best.objective)
        if not isinstance(value, float) or not math.isfinite(value) or value >= self.best.value:
            return
        save_checkpoint(self.path, {
            "kind": "generator", "config": self.cfg.to_dict(), "class_names": self.dataset.class_names,
            "image_shape": list(self.dataset.images.shape[1:]), "step": step, "generator": generator.state_dict(),
            "ema": None, "sampling": "ema" if self.cfg.train.ema else "raw",
            "objective": self.best.objective, "value": value})
        self.best = Best(self.best.objective, value, step)


def _stored_best(path: Path, objective: str, cfg: RunConfig, dataset: ImageDataset) -> Best:
    """The best so far of the run being resumed, as its best generator file says.

    Raises:
        CheckpointError: the file is another run's (another config or dataset): its value was
            measured on something else and must not stand as this run's best.
    """
    try:
        payload = load_checkpoint(path)
        value, step = float(payload["value"]), int(payload["step"])
    except (CheckpointError, KeyError, TypeError, ValueError) as exc:
        _logger.warning("%s: unreadable (%s); the best generator is chosen again from here on", path, exc)
        return Best(objective)
    try:
        check_same_run(payload, cfg, dataset, path)
    except CheckpointError as exc:
        raise CheckpointError(f"{str(exc).replace('cannot resume: ', '')} — a best generator of another run; "
                              "delete it to choose the best again from this run") from exc
    return Best(objective, value, step) if payload.get("objective") == objective else Best(objective)


def check_run_folder(out: Path, resume: bool, flag: str = "--out") -> None:
    """A folder a new run may write into, or a run to resume: never a folder whose files the run would replace.

    Raises:
        ConfigError: naming the folder and what it holds.
    """
    present = [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    if present and not resume and CHECKPOINT_NAME not in present and owned_by(out) == ("run", "train"):
        return  # a run of hpsearch's that stopped before its first checkpoint: it starts again from scratch
    if resume and not (out / CHECKPOINT_NAME).is_file():
        raise ConfigError(f"{flag} {out}: holds no {CHECKPOINT_NAME} to resume; drop --resume to start a run there "
                          "(in a new or empty folder)")
    if present and not resume:
        what = "already holds a checkpoint" if CHECKPOINT_NAME in present else \
            f"already holds {', '.join(present)}, which a run would replace"
        raise ConfigError(f"{flag} {out}: {what}; pass --resume to continue the run there, or choose another "
                          f"{flag}")


def mark_run_folder(out: Path) -> None:
    """Mark `out` as a run folder hpsearch made, once every check passed: a run killed before its first
    checkpoint can then be started again there (its files are hpsearch's, not the user's)."""
    out.mkdir(parents=True, exist_ok=True)
    if owned_by(out) is None:
        mark_owned(out, "run", "train")


def check_resumable(cfg: RunConfig, dataset: ImageDataset, out: Path) -> None:
    """Before a resumed run logs or writes anything: its checkpoint and best generator belong to it.

    Raises:
        CheckpointError: naming the file and what differs.
    """
    checkpoint = out / CHECKPOINT_NAME
    if checkpoint.is_file():
        check_same_run(load_checkpoint(checkpoint), cfg, dataset, checkpoint)
    if (out / BEST_GENERATOR).is_file():
        _stored_best(out / BEST_GENERATOR, "class_fid", cfg, dataset)  # any objective: only whose it is matters


def check_before_data(cfg: RunConfig, device: torch.device) -> None:
    """What a run needs besides its data, checked before a dataset is loaded (and cached): the FID features
    (torch-fidelity, a weights file) and, for `train.compile`, a compiler.

    Raises:
        ConfigError: naming the key and what is missing.
    """
    if cfg.metrics.enabled:
        check_features(cfg)
    if cfg.train.compile:
        check_compile(device)


def run_training(cfg: RunConfig, dataset: ImageDataset, out: Path, device: torch.device, cache_dir: Path, *,
                 resume: bool = False, metrics: bool | None = None, objective: str = "class_fid",
                 on_eval: Sequence[EvalCallback] = (), on_grid: Callable[[int, Path], None] | None = None,
                 stop: Callable[[], bool] | None = None, progress: bool = True) -> Best:
    """Train `cfg` into `out` (checkpoint, metrics log, grids, best generator), evaluating every `eval_every` steps.

    Args:
        cache_dir: shared cache of the domain classifier and the reference statistics.
        resume: continue from the checkpoint in `out`.
        metrics: evaluate (default: `cfg.metrics.enabled`); a search always does, its objective is a metric.
        objective: the metric whose best evaluation's generator is kept.
        on_eval: called after the evaluator, the grid and the best generator, with the metrics in the
            record; may raise to stop.
        on_grid: called with each grid's step and path once it is written (a search uploads it).
        stop: polled between steps (a graceful stop checkpoints and raises TrainingInterrupted).

    Returns:
        the best evaluation (step 0 when nothing was evaluated); its generator is in `out/best_generator.pt`.

    Raises:
        TrainingDiverged, TrainingInterrupted, CheckpointError: from the loop.
    """
    evaluate = cfg.metrics.enabled if metrics is None else metrics
    keeper = BestKeeper(objective, cfg, dataset, out, resume) if evaluate else None
    callbacks: list[EvalCallback] = [Evaluator(cfg, dataset, device, cache_dir)] if evaluate else []

    def write_grid(step: int, generator: nn.Module, _record: object) -> None:  # small; metrics use their own batch
        path = grid_path(out, step)
        save_class_grid(generator, dataset.num_classes, cfg.train.grid_per_class, cfg.model.z_dim, cfg.train.seed,
                        device, path)
        atomic_write(out / LATEST_GRID, lambda fh: fh.write(path.read_bytes()))
        if on_grid is not None:
            on_grid(step, path)

    callbacks += [write_grid, *([keeper] if keeper else [])]
    train(cfg, dataset, out, device, resume=resume, on_eval=[*callbacks, *on_eval], progress=progress, stop=stop)
    return keeper.best if keeper else Best(objective)


def noise_seeds(seed: int, n: int) -> list[int]:
    """The `n` evaluation seeds of a re-measurement of a run trained (and evaluated) with `seed`: all differ from it."""
    return [derived_seed(seed, i + 1, "noise") for i in range(n)]


def remeasure(cfg: RunConfig, dataset: ImageDataset, path: Path, device: torch.device, cache_dir: Path,
              seeds: Sequence[int], samples: int | None = None) -> list[dict[str, Any]]:
    """The generator stored at `path` scored once per evaluation seed (on `samples` images; default the config's).

    Raises:
        CheckpointError, ConfigError: the stored generator cannot be read or does not match the data.
    """
    generator = load_generator(path, device).generator
    measuring = replace_sections(cfg, metrics={"samples": samples}) if samples else cfg
    evaluator = Evaluator(measuring, dataset, device, cache_dir)
    return [evaluator.measure(generator, seed) for seed in seeds]
