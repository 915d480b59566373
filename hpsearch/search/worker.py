"""Workers: processes that take trials from the shared study until it is done."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from hpsearch.data import load_dataset
from hpsearch.errors import ConfigError
from hpsearch.search.claim import ClaimLock
from hpsearch.search.objective import Objective
from hpsearch.search.study import LoadedStudy, open_study
from hpsearch.training import resolve_device

_logger = logging.getLogger(__name__)
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _done(study: optuna.Study, n_trials: int | None) -> bool:
    """Finished plus running trials reach the target (failed ones are retried, not counted)."""
    return n_trials is not None and len(study.get_trials(deepcopy=False, states=_COUNTED)) >= n_trials


def run_worker(loaded: LoadedStudy, data_dir: Path, device_name: str = "auto", n_trials: int | None = None,
               timeout_s: float | None = None) -> int:
    """Run trials of the study in this process until it has `n_trials` or the time is up.

    Returns:
        the number of trials this worker ran.
    """
    study = open_study(loaded, create=True)
    device = resolve_device(device_name)
    dataset = load_dataset(loaded.base.data, data_dir)
    loaded.artifacts_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(loaded.artifacts_dir))
    objective = Objective(loaded, dataset, device, data_dir / "cache", store)
    target = n_trials if n_trials is not None else loaded.cfg.stop.n_trials
    timeout = timeout_s if timeout_s is not None else loaded.cfg.stop.timeout_s
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats, stale-trial failing and their retry are marked experimental; we rely on them.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    ran, start = 0, time.monotonic()
    while timeout is None or time.monotonic() - start < timeout:
        # Under the study's claim lock: fail trials whose worker died (their retries are queued),
        # check the target, and create the next trial; the lock is released once the trial exists.
        lock = ClaimLock(loaded.storage_url, loaded.cfg.study).acquire()
        try:
            optuna.storages.fail_stale_trials(study)
            if _done(study, target):
                break
            objective.on_start = lock.release
            # One trial per call; an invalid combination (ConfigError) fails its trial with the
            # reason and the worker goes on.
            study.optimize(objective, n_trials=1, catch=(ConfigError,), gc_after_trial=True)
        finally:
            lock.release()
        ran += 1
        _log_trial(study, ran)
    return ran


def _log_trial(study: optuna.Study, ran: int) -> None:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    best = study.best_trial if any(s == TrialState.COMPLETE for s in states) else None
    _logger.info("worker: %d trials run here; study: %d complete, %d pruned, %d failed; best %s",
                 ran, states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED), states.count(TrialState.FAIL),
                 f"#{best.number} = {best.value:.4g}" if best else "none yet")


def launch_workers(study_path: Path, storage: str, workers: int, gpus: list[str], per_gpu: int,
                   n_trials: int | None, data_dir: Path | None) -> int:
    """Start worker processes (pinned to GPUs when given) and wait for them; returns the worst exit code."""
    slots = [g for g in gpus for _ in range(per_gpu)] if gpus else [None] * workers
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    procs = []
    for i, gpu in enumerate(slots):
        cmd = [sys.executable, "-m", "hpsearch.cli", "worker", str(study_path), "--storage", storage,
               "--device", "cuda" if gpu is not None else "cpu"]
        cmd += ["--n-trials", str(n_trials)] if n_trials is not None else []
        cmd += ["--data-dir", str(data_dir)] if data_dir is not None else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HPSEARCH_THREADS": str(threads)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        _logger.info("starting worker %d%s", i, f" on GPU {gpu}" if gpu is not None else "")
        procs.append(subprocess.Popen(cmd, env=env))
    return max((p.wait() for p in procs), default=0)


def set_threads_from_env() -> None:
    """Workers started by `hpsearch run` share the CPU cores instead of oversubscribing them."""
    if os.environ.get("HPSEARCH_THREADS"):
        torch.set_num_threads(int(os.environ["HPSEARCH_THREADS"]))
