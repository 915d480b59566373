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
from typing import Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from hpsearch import environment
from hpsearch.config import RunConfig
from hpsearch.data import ImageDataset, load_dataset
from hpsearch.devices import resolve_device, visible_gpus
from hpsearch.errors import CheckpointError, ConfigError, HPSearchError, TrainingInterrupted
from hpsearch.io import OWNER_FILE, check_writable, mark_owned, owned_by
from hpsearch.metrics import check_features, check_metrics
from hpsearch.runner import check_before_data
from hpsearch.search.artifacts import AtomicArtifactStore
from hpsearch.search.backend import Backend, StorageKind, open_backend, storage_kind
from hpsearch.search.confirm import (
    WAIT_POLL_S,
    ConfirmObjective,
    check_companion,
    has_work,
    next_run,
    open_companion,
    source_records,
)
from hpsearch.search.objective import Objective
from hpsearch.search.optuna_private import OPTIMIZE_LOGGER
from hpsearch.search.study import open_study, study_backend
from hpsearch.search.study_file import LoadedStudy

_logger = logging.getLogger(__name__)
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# A worker whose trials all fail stops: a fault no trial avoids (a space value this machine cannot run, such as
# Inception features without torch-fidelity). The space check proves every value and pair of the space valid,
# so 10 invalid combinations in a row are not bad luck.
MAX_FAILED_IN_A_ROW = 10


def _done(study: optuna.Study, n_trials: int | None) -> bool:
    """Finished plus running trials reach the target (failed ones are retried, not counted)."""
    return n_trials is not None and len(study.get_trials(deepcopy=False, states=_COUNTED)) >= n_trials


def run_worker(loaded: LoadedStudy, data_dir: Path, device_name: str = "auto", n_trials: int | None = None,
               stop: Callable[[], bool] | None = None, prepared: Prepared | None = None, confirm: bool = False,
               ready: Callable[[], None] | None = None) -> None:
    """Run trials of the study in this process until it has `n_trials`, the study's timeout or `stop()`.

    Args:
        stop: polled between trials and between training steps (a GracefulStop); when it
            fires mid-trial the trial is checkpointed, failed and queued again for a retry
            that resumes from the checkpoint.
        prepared: what `prepare_worker` returned, when the caller ran it already.
        confirm: run the study's confirmation runs (`hpsearch.search.confirm`) until all planned ones
            have run, instead of search trials.
        ready: called once every check has passed, before the first trial (the CLI says its warnings
            there, so that a refused start prints its one error line only).

    Raises:
        ConfigError, DataError: from `prepare_worker`, before the study is created or touched.
    """
    if confirm:  # nothing to create: the study and its planned runs must exist before any data is cached
        backend = prepared.backend if prepared else study_backend(loaded, must_exist=True)
        search = open_study(loaded, backend=backend)
        study = open_companion(loaded, backend)
        check_companion(study)
        if not has_work(study):  # a finished plan or race: no dataset to cache, no folder to make
            _logger.info("%s: every planned confirmation run has run; nothing to do", study.study_name)
            return
        prepared = prepared or prepare_worker(loaded, data_dir, device_name, backend)
    else:
        prepared = prepared or prepare_worker(loaded, data_dir, device_name)
        backend = prepared.backend
        study = open_study(loaded, create=True, backend=backend)
    if ready is not None:
        ready()
    heartbeat = backend.storage.get_heartbeat_interval() if backend.heartbeats else None  # type: ignore[attr-defined]
    _logger.info("worker on %s (%s; %s) with %s", backend.url.masked, backend.scheme,
                 f"heartbeat every {heartbeat} s" if heartbeat else "no heartbeats", prepared.device)
    make_outputs(loaded)
    store = AtomicArtifactStore(str(loaded.artifacts_dir))
    objective: Objective | ConfirmObjective
    schedule: Schedule
    if confirm:  # the companion study's runs, until every planned one has run (a race: until it stops)
        objective = ConfirmObjective(loaded, source_records(search), prepared.dataset, prepared.device,
                                     data_dir / "cache", store,
                                     int(study.user_attrs.get("samples", loaded.base_config.metrics.samples)), stop)
        schedule = next_run
    else:
        objective = Objective(loaded, prepared.dataset, prepared.device, data_dir / "cache", store, stop)
        schedule = until(n_trials if n_trials is not None else loaded.cfg.stop.n_trials)
    work_loop(study, backend, objective, schedule, loaded.cfg.stop.timeout_s, stop)


Schedule = Callable[[optuna.Study], str]
"""What a worker does next, asked under the study's claim lock: "run" a trial, "wait" for others' trials
(a race's round), or "done"."""


def until(n_trials: int | None) -> Schedule:
    """A search's schedule: run trials until finished plus running ones reach `n_trials` (None: no limit)."""
    return lambda study: "done" if _done(study, n_trials) else "run"


class TrialObjective(Protocol):
    """What the worker loop needs of an objective: it is called with each trial, calls `on_start` once the
    trial exists (the loop releases its claim lock there) and says which trial it runs."""

    on_start: Callable[[], None]
    current: int | None

    def __call__(self, trial: optuna.Trial) -> float: ...


def work_loop(study: optuna.Study, backend: Backend, objective: TrialObjective, schedule: Schedule,
              timeout: float | None = None, stop: Callable[[], bool] | None = None) -> int:
    """The worker's loop: claim, ask the schedule, run one trial, until it says done, the time or `stop()`.

    Separate from `run_worker` so that a benchmark can drive the real loop and storage path with an
    objective that does no training (`benchmarks/storage_scale.py`).

    Returns:
        the number of trials this worker ran.
    """
    quiet_optuna()
    ran, failed_in_a_row, start = 0, 0, time.monotonic()
    while (timeout is None or time.monotonic() - start < timeout) and not (stop and stop()):
        # Under the study's claim lock: fail trials whose worker died (their retries are queued),
        # ask the schedule, and create the next trial; the lock is released once the trial exists.
        lock = backend.claim_lock(study.study_name).acquire()
        try:
            optuna.storages.fail_stale_trials(study)
            step = schedule(study)
            if step == "done":
                break
            if step == "wait":
                lock.release()
                _wait(stop)
                continue
            objective.on_start, objective.current = lock.release, None
            # One trial per call; an invalid combination (ConfigError) or an unusable checkpoint of a dead
            # attempt (CheckpointError) fails its trial with the reason and the worker goes on (until
            # MAX_FAILED_IN_A_ROW in a row).
            study.optimize(objective, n_trials=1, catch=(ConfigError, CheckpointError), gc_after_trial=True)
        except TrainingInterrupted as exc:
            _hand_back(study, objective.current, exc)
            break
        except OSError as exc:  # a full disk, a folder gone: no fault of the trial's; another worker may go on
            _hand_back(study, objective.current, exc)
            raise
        finally:
            lock.release()
        ran += 1
        trials = study.get_trials(deepcopy=False)
        _log_trial(trials, ran)
        failure = _failure(trials, objective.current)
        failed_in_a_row = failed_in_a_row + 1 if failure is not None else 0
        if failed_in_a_row >= MAX_FAILED_IN_A_ROW:  # a fault no trial can avoid: stop instead of failing them all
            raise ConfigError(f"{failed_in_a_row} trials in a row failed in this worker, the last one with: "
                              f"{failure}; fix that and run again (the failed trials stay in the study)")
    return ran


def _wait(stop: Callable[[], bool] | None) -> None:
    """Sleep a poll interval, waking early when `stop()` fires."""
    deadline = time.monotonic() + WAIT_POLL_S
    while time.monotonic() < deadline and not (stop and stop()):
        time.sleep(0.1)


def _failure(trials: list[FrozenTrial], number: int | None) -> str | None:
    """Why trial `number` failed (its recorded reason), or None when it did not fail."""
    trial = next((t for t in trials if t.number == number), None)
    if trial is None or trial.state != TrialState.FAIL:
        return None
    return str(trial.user_attrs.get("failure") or trial.system_attrs.get("fail_reason") or "no reason recorded")


class Prepared:
    """What a worker start checked before its first trial (see `prepare_worker`), and its storage.

    The storage was probed; it is opened on first use of `backend`, once, so that a caller with checks of
    its own left (GPU packing) runs them before anything is created in it.
    """

    def __init__(self, device: torch.device, dataset: ImageDataset, kind: StorageKind, loaded: LoadedStudy,
                 backend: Backend | None = None) -> None:
        self.device, self.dataset, self._kind, self._loaded, self._backend = device, dataset, kind, loaded, backend

    @property
    def backend(self) -> Backend:
        """The study's storage with the worker's heartbeats, opened (without probing again) the first time."""
        if self._backend is None:
            cfg = self._loaded.cfg
            self._backend = open_backend(self._kind, cfg.heartbeat_s, cfg.max_retry, probe=False)
        return self._backend


def prepare_worker(loaded: LoadedStudy, data_dir: Path, device_name: str, backend: Backend | None = None) -> Prepared:
    """Every check that can fail before a study exists: device, storage, output folders, data, metrics.

    Run before the study is created (or a worker joins it), so that a typo in `data.root`,
    a device that is not there or a folder that cannot be written leaves no study, trial
    or folder behind and can simply be fixed and re-run. Nothing is created here except the
    dataset's cache (a derived file in the data directory, written atomically). The storage is
    probed once, before the data is cached; `Prepared.backend` opens it once, when first used.

    Args:
        backend: the storage, when the caller opened it already (a confirmation reads the study first).

    Raises:
        ConfigError, DataError: naming what is wrong.
    """
    device = resolve_device(device_name)
    kind = backend.kind if backend is not None else storage_kind(loaded.storage)
    if backend is None:
        kind.probe()  # before the dataset is cached: an unreachable database writes nothing
    check_outputs(loaded)
    check_writable(data_dir, "data directory", is_dir=True)
    check_before_data(loaded.base_config, device)
    check_features(loaded.base_config)  # every trial is evaluated, whatever metrics.enabled says
    dataset = load_dataset(loaded.base_config.data, data_dir)
    # Every trial is evaluated (the objective is a metric), whatever the base's metrics.enabled says.
    checked: set[str] = set()

    def metrics_fit_the_data(cfg: RunConfig) -> None:
        if repr(cfg.metrics) not in checked:  # the space check tries many configs with the same metrics
            check_metrics(cfg, dataset)
            checked.add(repr(cfg.metrics))

    loaded.check_each(metrics_fit_the_data)
    return Prepared(device, dataset, kind, loaded, backend)


def check_outputs(loaded: LoadedStudy) -> None:
    """Fail before the study is created or a trial starts when a folder trials write to cannot be written.

    Nothing is created: `make_outputs` does that once the study exists.

    Raises:
        ConfigError: naming the study key and the folder.
    """
    check_writable(loaded.artifacts_dir, "artifacts", is_dir=True)
    check_writable(loaded.runs_dir, "runs_dir", is_dir=True)
    marked = (loaded.runs_dir / OWNER_FILE).exists() or (loaded.runs_dir / OWNER_FILE).is_symlink()
    mark = owned_by(loaded.runs_dir) if marked else None
    if marked and mark != ("trials", _owner(loaded)):
        owner = mark[1] if mark else "another study (its mark is unreadable)"
        raise ConfigError(f"{loaded.path}: runs_dir {loaded.runs_dir}: holds the trial folders of {owner}, "
                          "whose trial_NNNNN folders this study's would replace; give this study a runs_dir "
                          "of its own")


def make_outputs(loaded: LoadedStudy) -> None:
    """Create the folders trials write to (checked by `check_outputs`), and mark the trial folders' parent as
    this study's, so that another study (or this one on another storage) never writes its trials there."""
    for folder in (loaded.artifacts_dir, loaded.runs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if not (loaded.runs_dir / OWNER_FILE).exists():  # an unreadable mark is refused by check_outputs, never replaced
        mark_owned(loaded.runs_dir, "trials", _owner(loaded))


def _owner(loaded: LoadedStudy) -> str:
    """The study's name: the same study reached through another URL (a proxy, another host name) is the same."""
    return f"study {loaded.cfg.study!r}"


class _QuietHPSearchErrors(logging.Filter):
    """Optuna logs a failed trial's traceback; for hpsearch's own errors, and for a file-system fault (a full
    disk) that the command reports in one line naming the file, the one-line reason says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (HPSearchError, OSError)):
            record.exc_info = None
        return True


def quiet_optuna() -> None:
    """Optuna at WARNING, without tracebacks for errors hpsearch raises on purpose."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats, stale-trial failing and their retry are marked experimental; we rely on them.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logger = logging.getLogger(OPTIMIZE_LOGGER)
    if not any(isinstance(f, _QuietHPSearchErrors) for f in logger.filters):
        logger.addFilter(_QuietHPSearchErrors())


def _hand_back(study: optuna.Study, number: int | None, exc: BaseException) -> None:
    """Queue the interrupted (now failed) trial again; its retry resumes from the checkpoint.

    Unlike a dead worker's trial, a trial handed back on request (or after a fault of the
    machine's, such as a full disk) does not count against `max_retry`: a preemptible worker
    may be stopped any number of times.
    """
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None or trial.state != TrialState.FAIL:  # no trial had started, or it ended otherwise
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)(study, trial)
    _logger.warning("trial %d handed back for retry (%s)", number, exc)


def _log_trial(trials: list[FrozenTrial], ran: int) -> None:
    states = [t.state for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = min(complete, key=lambda t: float(t.value or 0.0)) if complete else None
    _logger.info("worker: %d trials run here; study: %d complete, %d pruned, %d failed; best %s",
                 ran, states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED), states.count(TrialState.FAIL),
                 f"#{best.number} = {best.value:.4g}" if best else "none yet")


def launch_workers(study_path: Path, storage: str, workers: int, gpus: list[str], per_gpu: int,
                   n_trials: int | None, data_dir: Path | None, confirm: bool = False) -> int:
    """Start worker processes (pinned to GPUs when given) and wait for them; returns the worst exit code.

    The workers run in their own session so that a terminal's Ctrl-C reaches only this
    process, which forwards every SIGTERM/SIGINT to them: the first makes each checkpoint
    and hand back its trial, a second makes them exit at once. The storage URL reaches them
    in their environment (`HPSEARCH_STORAGE`), never on their command line: a password in
    argv would be visible to every user of the machine in `ps`.
    """
    slots = [g for g in gpus for _ in range(per_gpu)] if gpus else [None] * workers
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    procs: list[subprocess.Popen[bytes]] = []
    for i, gpu in enumerate(slots):
        cmd = [sys.executable, "-m", "hpsearch", "worker", str(study_path),
               "--device", "cuda" if gpu is not None else "cpu"]
        cmd += ["--n-trials", str(n_trials)] if n_trials is not None else []
        cmd += ["--data-dir", str(data_dir)] if data_dir is not None else []
        cmd += ["--confirm"] if confirm else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HPSEARCH_THREADS": str(threads),
               "HPSEARCH_STORAGE": storage}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        _logger.info("starting worker %d%s", i, f" on GPU {gpu}" if gpu is not None else "")
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))

    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        _logger.warning("%s: passing it on to %d workers", signal.Signals(signum).name, len(procs))
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worst = max((p.wait() for p in procs), default=0)
        return max(worst, 128 + received[0]) if received else worst  # stopped on request, like `train`
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_gpus(text: str | None) -> list[str]:
    """GPU ids from a comma-separated list ("0,1"), checked against the GPUs this machine has.

    Raises:
        ConfigError: not integers, repeated, no CUDA, or an id the machine does not have.
    """
    if text is None:
        return []
    items = [g.strip() for g in text.split(",")]
    if not items or not all(g.isdigit() and len(g) <= 4 for g in items):
        raise ConfigError(f"GPU ids: comma-separated GPU numbers, e.g. 0,1; got {text!r}")
    if len(set(map(int, items))) != len(items):
        raise ConfigError(f"GPU ids: each GPU once (ask for several workers per GPU instead); got {text!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"GPU ids {text}: no CUDA device is available on this machine")
    count = torch.cuda.device_count()
    visible = visible_gpus()
    if visible:  # ids are physical GPU numbers; this process may use only those listed
        outside = [g for g in items if str(int(g)) not in visible]
        if outside:
            raise ConfigError(f"GPU ids {text}: {','.join(outside)} not among $CUDA_VISIBLE_DEVICES "
                              f"({','.join(visible)}); give physical GPU numbers from that list")
    elif max(map(int, items)) >= count:
        raise ConfigError(f"GPU ids {text}: this machine has {count} GPU(s), numbered 0..{count - 1}")
    return [str(int(g)) for g in items]


def set_threads_from_env() -> None:
    """Workers started by `hpsearch run` share the CPU cores instead of oversubscribing them."""
    count = environment.threads()
    if count is not None:
        torch.set_num_threads(count)
