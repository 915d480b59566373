"""The Optuna objective: trial → config → the trial runner with evaluations → reported and pruned value."""

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

from hpsearch.checkpoint import BEST_GENERATOR
from hpsearch.data import ImageDataset
from hpsearch.devices import device_label
from hpsearch.errors import ConfigError, DataError, TrainingDiverged
from hpsearch.runner import RUN_FILES, noise_seeds, remeasure, run_training
from hpsearch.search.artifacts import upload_run
from hpsearch.search.record import TrialWriter
from hpsearch.search.storage import storage_seconds
from hpsearch.search.study_file import LoadedStudy

_logger = logging.getLogger(__name__)


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
    """Trains one configuration per trial and returns the value of the generator it keeps.

    The value is that of the trial's best evaluation, whose sampling generator is kept as an
    artifact beside the last checkpoint (GANs often get worse late, so the last one is not
    what the value describes). Each evaluation is reported for pruning and stored in the trial
    record with its metrics, a per-class sample grid (as an artifact) and the progress. A
    diverged trial is pruned with the reason recorded, so the worker goes on. A stop request
    (`stop`) ends training with a checkpoint and raises TrainingInterrupted, which fails the
    trial; the worker then queues its retry, which resumes from that checkpoint.

    Args:
        loaded: the study.
        dataset: the real images (loaded once per worker).
        device: the worker's device.
        cache_dir: shared cache of the domain classifier and reference statistics.
        store: the artifact store every worker writes to.
        stop: polled between training steps (a graceful stop), or None.

    The worker loop sets `on_start` before each trial (it releases the claim lock there) and
    reads `current`, the number of the trial being trained (see `worker.TrialObjective`).
    """

    def __init__(self, loaded: LoadedStudy, dataset: ImageDataset, device: torch.device, cache_dir: Path,
                 store: FileSystemArtifactStore, stop: Callable[[], bool] | None = None) -> None:
        self.loaded, self.dataset, self.device, self.cache_dir, self.store = loaded, dataset, device, cache_dir, store
        self.stop = stop
        self.on_start: Callable[[], None] = lambda: None
        self.current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        self.current = trial.number
        loaded, record = self.loaded, TrialWriter(trial)
        try:
            cfg = loaded.space.suggest(trial, loaded.cfg.base, loaded.n_blocks)
        except ConfigError as exc:  # a combination the space check could not rule out; the worker goes on
            record.failure(str(exc))
            raise
        run_dir, retry = trial_run_dir(loaded.runs_dir, trial)
        if not retry and run_dir.exists():
            _remove_old_run(run_dir, record)  # left by an older study of the same name
        # The run folder resolved, so that it is found from anywhere.
        record.start(cfg, str(run_dir.resolve()), device_label(self.device), loaded.cfg.objective)
        reporter = _Reporter(trial, record, loaded.cfg.objective, loaded.cfg.collapse == "prune")

        def upload_grid(step: int, path: Path) -> None:
            record.grid(step, upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial,
                                              mimetype="image/png"))

        start, storage_start = time.perf_counter(), storage_seconds()
        try:
            best = run_training(cfg, self.dataset, run_dir, self.device, self.cache_dir, resume=retry, metrics=True,
                                objective=loaded.cfg.objective, on_eval=[reporter], on_grid=upload_grid,
                                stop=self.stop, progress=False)
            if best.step and loaded.cfg.noise_seeds:  # the objective's own noise, on the generator it keeps
                values = remeasure(cfg, self.dataset, run_dir / BEST_GENERATOR, self.device, self.cache_dir,
                                   noise_seeds(cfg.train.seed, loaded.cfg.noise_seeds))
                record.noise([float(v[loaded.cfg.objective]) for v in values])
        except TrainingDiverged as exc:
            record.failure(str(exc))
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        except (ConfigError, DataError) as exc:  # e.g. metrics the data cannot take: the reason stays with the trial
            record.failure(str(exc))
            raise
        finally:
            record.timing(time.perf_counter() - start, storage_seconds() - storage_start)  # the database's share
        upload_run(self.store, trial, record, run_dir, best)
        return best.value  # the value of the generator the trial keeps


def _remove_old_run(run_dir: Path, record: TrialWriter) -> None:
    """Remove a run folder that a trial of an earlier study of the same name left, and only such a folder.

    Raises:
        ConfigError: it holds anything a run does not write (the trial fails with this reason; nothing is removed).
    """
    try:
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES)
    except OSError as exc:
        foreign = [f"(cannot be listed: {exc.strerror})"]
    if not run_dir.is_dir() or run_dir.is_symlink() or foreign:
        what = f"holds what a run does not write ({', '.join(foreign[:5])})" if foreign else \
            "is not a plain folder (a file or a symbolic link)"
        message = (f"run folder {run_dir}: exists and {what}; move it away or set the study's runs_dir to a "
                   "folder of its own")
        record.failure(message)
        raise ConfigError(message)
    shutil.rmtree(run_dir)


class _Reporter:
    """The evaluation callback of one trial: metrics → trial record, report, prune.

    An evaluation flagged `collapse` is recorded; with `prune_collapse` it also ends the trial.
    """

    def __init__(self, trial: optuna.Trial, record: TrialWriter, objective: str, prune_collapse: bool) -> None:
        self.trial, self.record, self.objective, self.prune_collapse = trial, record, objective, prune_collapse

    def __call__(self, step: int, _generator: nn.Module, values: Mapping[str, Any]) -> None:
        value = values[self.objective]  # the evaluator ran first (see run_training)
        self.record.evaluation(step, values)
        if not math.isfinite(value):
            self.record.failure(f"{self.objective} is {value} at step {step}")
            raise optuna.TrialPruned(f"{self.objective} is {value} at step {step}")
        if values.get("collapse") is True:
            self.record.collapse(step, values)
            if self.prune_collapse:
                reason = f"collapse at step {step}: {values['collapse_reason']}"
                self.record.failure(reason)
                raise optuna.TrialPruned(reason)
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.objective} {value:.4g})")
