"""The Optuna objective: trial → config → training with evaluations → reported and pruned value."""

from __future__ import annotations

import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from torch import nn

from hpsearch.checkpoint import CHECKPOINT_NAME
from hpsearch.data import ImageDataset
from hpsearch.errors import ConfigError, TrainingDiverged
from hpsearch.metrics import Evaluator
from hpsearch.sampling import save_class_grid
from hpsearch.search.storage import storage_seconds
from hpsearch.search.study import LoadedStudy
from hpsearch.training import train

_logger = logging.getLogger(__name__)
GRID_PER_CLASS = 8


def trial_run_dir(runs_dir: Path, trial: optuna.Trial | optuna.trial.FrozenTrial) -> tuple[Path, bool]:
    """The trial's run folder and whether it is a retry.

    All retries of a trial share the first attempt's folder, so a retry resumes from the
    newest checkpoint any attempt wrote.
    """
    if isinstance(trial, optuna.Trial):  # the retry history lives in the frozen trial's system attrs
        trial = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    with warnings.catch_warnings():  # marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trial)
    first = history[0] if history else trial.number
    return runs_dir / f"trial_{first:05d}", bool(history)


class Objective:
    """Trains one configuration per trial and returns its best objective value.

    The value is the minimum over the trial's evaluations (GANs often get worse late);
    each evaluation is reported for pruning, and stored with its metrics, a per-class
    sample grid (as an artifact) and the progress. A diverged trial is pruned with the
    reason recorded, so the worker goes on. A stop request (`stop`) ends training with a
    checkpoint and raises TrainingInterrupted, which fails the trial; the worker then
    queues its retry, which resumes from that checkpoint.

    Args:
        loaded: the study.
        dataset: the real images (loaded once per worker).
        device: the worker's device.
        cache_dir: shared cache of the domain classifier and reference statistics.
        store: the artifact store every worker writes to.
    """

    def __init__(self, loaded: LoadedStudy, dataset: ImageDataset, device: torch.device, cache_dir: Path,
                 store: FileSystemArtifactStore) -> None:
        self.loaded, self.dataset, self.device, self.cache_dir, self.store = loaded, dataset, device, cache_dir, store
        self.on_start: Callable[[], None] = lambda: None  # the worker releases its claim lock here
        self.stop: Callable[[], bool] | None = None  # polled between training steps (graceful stop)
        self.current: int | None = None  # the number of the trial being trained

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        self.current = trial.number
        loaded = self.loaded
        try:
            cfg = loaded.space.suggest(trial, loaded.cfg.base, loaded.n_blocks)
        except ConfigError as exc:  # a combination the space check could not rule out; the worker goes on
            trial.set_user_attr("failure", str(exc))
            raise
        run_dir, retry = trial_run_dir(loaded.runs_dir, trial)
        if not retry and run_dir.exists():
            shutil.rmtree(run_dir)  # left by an older study of the same name
        for key, value in {"config": cfg.to_dict(), "run_dir": str(run_dir), "device": str(self.device),
                           "seed": cfg.train.seed, "steps": cfg.train.steps, "objective": loaded.cfg.objective}.items():
            trial.set_user_attr(key, value)
        reporter = _Reporter(trial, Evaluator(cfg, self.dataset, self.device, self.cache_dir), loaded.cfg.objective,
                             self.store, run_dir, cfg.model.z_dim, cfg.train.seed)
        start, storage_start = time.perf_counter(), storage_seconds()
        try:
            train(cfg, self.dataset, run_dir, self.device, resume=retry, on_eval=[reporter], progress=False,
                  stop=self.stop)
        except TrainingDiverged as exc:
            trial.set_user_attr("failure", str(exc))
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        finally:
            trial.set_user_attr("wall_s", time.perf_counter() - start)
            trial.set_user_attr("storage_s", storage_seconds() - storage_start)  # the database's share
        checkpoint = run_dir / CHECKPOINT_NAME
        trial.set_user_attr("checkpoint_artifact", upload_artifact(
            artifact_store=self.store, file_path=str(checkpoint), study_or_trial=trial))
        return reporter.best


class _Reporter:
    """The evaluation callback of one trial: metrics → user attributes, report, grid, prune."""

    def __init__(self, trial: optuna.Trial, evaluator: Evaluator, objective: str, store: FileSystemArtifactStore,
                 run_dir: Path, z_dim: int, seed: int) -> None:
        self.trial, self.evaluator, self.objective, self.store = trial, evaluator, objective, store
        self.run_dir, self.z_dim, self.seed = run_dir, z_dim, seed
        self.best = math.inf
        self.evals: list[dict[str, Any]] = []
        self.grids: dict[str, str] = {}

    def __call__(self, step: int, generator: nn.Module, record: Mapping[str, Any]) -> dict[str, float]:
        metrics = self.evaluator(step, generator)
        value = metrics[self.objective]
        self.evals.append({**record, **metrics, "step": step})
        self.trial.set_user_attr("evals", self.evals)
        self.trial.set_user_attr("progress_step", step)
        self._upload_grid(step, generator)
        if not math.isfinite(value):
            self.trial.set_user_attr("failure", f"{self.objective} is {value} at step {step}")
            raise optuna.TrialPruned(f"{self.objective} is {value} at step {step}")
        self.best = min(self.best, value)
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.objective} {value:.4g})")
        return metrics

    def _upload_grid(self, step: int, generator: nn.Module) -> None:
        path = self.run_dir / "samples" / f"step_{step:07d}.png"
        save_class_grid(generator, self.evaluator.dataset.num_classes, GRID_PER_CLASS, self.z_dim, self.seed,
                        self.evaluator.device, path)
        artifact = upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=self.trial,
                                   mimetype="image/png")
        self.grids[str(step)] = artifact
        self.trial.set_user_attr("grids", self.grids)
