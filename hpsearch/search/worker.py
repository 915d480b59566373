"""Workers: processes that take trials from the shared study until it is done."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from hpsearch.data import load_dataset
from hpsearch.errors import ConfigError, TrainingInterrupted
from hpsearch.search.claim import claim_lock
from hpsearch.search.objective import Objective
from hpsearch.search.study import LoadedStudy, open_study
from hpsearch.training import resolve_device

_logger = logging.getLogger(__name__)
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _done(study: optuna.Study, n_trials: int | None) -> bool:
    """Finished plus running trials reach the target (failed ones are retried, not counted)."""
    return n_trials is not None and len(study.get_trials(deepcopy=False, states=_COUNTED)) >= n_trials


def run_worker(loaded: LoadedStudy, data_dir: Path, device_name: str = "auto", n_trials: int | None = None,
               timeout_s: float | None = None, stop: Callable[[], bool] | None = None) -> int:
    """Run trials of the study in this process until it has `n_trials`, the time is up or `stop()`.

    Args:
        stop: polled between trials and between training steps (a GracefulStop); when it
            fires mid-trial the trial is checkpointed, failed and queued again for a retry
            that resumes from the checkpoint.

    Returns:
        the number of trials this worker ran.
    """
    check_outputs(loaded)
    study = open_study(loaded, create=True)
    device = resolve_device(device_name)
    dataset = load_dataset(loaded.base.data, data_dir)
    store = FileSystemArtifactStore(str(loaded.artifacts_dir))
    objective = Objective(loaded, dataset, device, data_dir / "cache", store)
    objective.stop = stop
    target = n_trials if n_trials is not None else loaded.cfg.stop.n_trials
    timeout = timeout_s if timeout_s is not None else loaded.cfg.stop.timeout_s
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats, stale-trial failing and their retry are marked experimental; we rely on them.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    ran, start = 0, time.monotonic()
    while (timeout is None or time.monotonic() - start < timeout) and not (stop and stop()):
        # Under the study's claim lock: fail trials whose worker died (their retries are queued),
        # check the target, and create the next trial; the lock is released once the trial exists.
        lock = claim_lock(loaded.storage_url, loaded.cfg.study).acquire()
        try:
            optuna.storages.fail_stale_trials(study)
            if _done(study, target):
                break
            objective.on_start = lock.release
            # One trial per call; an invalid combination (ConfigError) fails its trial with the
            # reason and the worker goes on.
            study.optimize(objective, n_trials=1, catch=(ConfigError,), gc_after_trial=True)
        except TrainingInterrupted as exc:
            _hand_back(study, objective.current, exc)
            break
        finally:
            lock.release()
        ran += 1
        _log_trial(study, ran)
    return ran


def check_outputs(loaded: LoadedStudy) -> None:
    """Fail before the study is created or a trial starts when a folder trials write to cannot be written.

    Raises:
        ConfigError: naming the study key and the folder.
    """
    _check_writable(loaded.artifacts_dir, "artifacts")
    _check_writable(loaded.runs_dir, "runs_dir")


def _check_writable(folder: Path, key: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{key} {folder}: cannot be written ({exc.strerror or type(exc).__name__}); "
                          "choose a folder this worker can write") from exc


def _hand_back(study: optuna.Study, number: int | None, exc: TrainingInterrupted) -> None:
    """Queue the interrupted (now failed) trial again; its retry resumes from the checkpoint.

    Unlike a dead worker's trial, a trial handed back on request does not count against
    `max_retry`: a preemptible worker may be stopped any number of times.
    """
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)(study, trial)
    _logger.warning("trial %d handed back for retry (%s)", number, exc)


def _log_trial(study: optuna.Study, ran: int) -> None:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    best = study.best_trial if any(s == TrialState.COMPLETE for s in states) else None
    _logger.info("worker: %d trials run here; study: %d complete, %d pruned, %d failed; best %s",
                 ran, states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED), states.count(TrialState.FAIL),
                 f"#{best.number} = {best.value:.4g}" if best else "none yet")


def launch_workers(study_path: Path, storage: str, workers: int, gpus: list[str], per_gpu: int,
                   n_trials: int | None, data_dir: Path | None) -> int:
    """Start worker processes (pinned to GPUs when given) and wait for them; returns the worst exit code.

    The workers run in their own session so that a terminal's Ctrl-C reaches only this
    process, which forwards every SIGTERM/SIGINT to them: the first makes each checkpoint
    and hand back its trial, a second makes them exit at once.
    """
    slots = [g for g in gpus for _ in range(per_gpu)] if gpus else [None] * workers
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    procs: list[subprocess.Popen[bytes]] = []
    for i, gpu in enumerate(slots):
        cmd = [sys.executable, "-m", "hpsearch.cli", "worker", str(study_path), "--storage", storage,
               "--device", "cuda" if gpu is not None else "cpu"]
        cmd += ["--n-trials", str(n_trials)] if n_trials is not None else []
        cmd += ["--data-dir", str(data_dir)] if data_dir is not None else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HPSEARCH_THREADS": str(threads)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        _logger.info("starting worker %d%s", i, f" on GPU {gpu}" if gpu is not None else "")
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))

    def forward(signum: int, _frame: object) -> None:
        _logger.warning("%s: passing it on to %d workers", signal.Signals(signum).name, len(procs))
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return max((p.wait() for p in procs), default=0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def set_threads_from_env() -> None:
    """Workers started by `hpsearch run` share the CPU cores instead of oversubscribing them."""
    if os.environ.get("HPSEARCH_THREADS"):
        torch.set_num_threads(int(os.environ["HPSEARCH_THREADS"]))
