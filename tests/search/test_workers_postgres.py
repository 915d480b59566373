"""Many workers on one study: exact trial counts on PostgreSQL and SQLite; crash recovery by heartbeat."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import torch
from optuna.trial import TrialState

from tests.search.helpers import (
    GOOD,
    ROOT,
    check_exact,
    free_port,
    start_proxy,
    stop_proxy,
    storage_proxy,
    wait_for,
    warm_cache,
    worker,
    write_study,
)


@pytest.fixture(params=["database", "proxy"])
def through(request: pytest.FixtureRequest) -> str:
    """Workers reach the study directly, or through `hpsearch storage-proxy` (heartbeats and claims by gRPC)."""
    return str(request.param)


@contextmanager
def _workers_storage(through: str, study_path: Path, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """The workers' extra arguments: none for the database, `--storage grpc://...` behind a proxy."""
    if through == "database":
        yield ()
    else:
        with storage_proxy(study_path, tmp_path / "proxy.log") as url:
            yield ("--storage", url)


@pytest.mark.slow
def test_three_postgres_workers_finish_exactly_the_requested_trials(tmp_path: Path, postgres_url: str,
                                                                    study_name: str, through: str) -> None:
    path = write_study(tmp_path, name=study_name, storage=postgres_url, enqueue=[])
    with _workers_storage(through, path, tmp_path) as extra:
        warm_cache(path, tmp_path / "data", *extra)
        procs = [worker(path, tmp_path / "data", "--n-trials", "7", *extra) for _ in range(3)]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert not any("Traceback" in o or "Error" in o for o in outputs), outputs
    check_exact(postgres_url, study_name, 7)


@pytest.mark.slow
def test_two_sqlite_workers_finish_without_database_locked(tmp_path: Path, study_name: str) -> None:
    path = write_study(tmp_path, name=study_name, enqueue=[])
    warm_cache(path, tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "hpsearch.cli", "run", str(path), "--workers", "2", "--n-trials", "5",
                          "--data-dir", str(tmp_path / "data")], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "database is locked" not in run.stdout + run.stderr
    assert ": 5 trials:" in run.stdout  # the closing summary
    check_exact(f"sqlite:///{tmp_path / 'study.db'}", study_name, 5)


LONG_TRIALS: dict[str, dict[str, Any]] = {
    "data": {"name": "digits", "image_size": 16},
    "model": {"dense_channels": 8, "g_width": 0.0625, "d_width": 0.0625, "embed_dim": 4},
    "train": {"steps": 3000, "batch_size": 16, "eval_every": 100, "log_every": 50, "checkpoint_every": 100,
              "ema": False},
    "metrics": {"samples": 100, "classifier_steps": 100, "msssim_pairs": 5, "real_samples": 500}}


def _short_trial_study(tmp_path: Path, postgres_url: str, study_name: str, steps: int, **overrides: Any) -> Path:
    """A PostgreSQL study of short trials, evaluated every 20 steps, without pruning."""
    train = {**LONG_TRIALS["train"], "steps": steps, "eval_every": 20}
    return write_study(tmp_path, name=study_name, storage=postgres_url, enqueue=[], pruner={"name": "none"},
                       base={**LONG_TRIALS, "train": train}, **overrides)


def _short_trial_workers(tmp_path: Path, postgres_url: str, study_name: str, steps: int, workers: int,
                         n_trials: int, **overrides: Any) -> list[subprocess.Popen[str]]:
    """`workers` workers (caches warmed first) on a study of short trials, until it has `n_trials` trials."""
    path = _short_trial_study(tmp_path, postgres_url, study_name, steps, **overrides)
    warm_cache(path, tmp_path / "data")
    return [worker(path, tmp_path / "data", "--n-trials", str(n_trials)) for _ in range(workers)]


def _wait_until_finished(postgres_url: str, study_name: str, k: int, timeout: float = 300) -> None:
    """Until the study has `k` finished trials: the workers are past start-up and mid-study."""
    deadline = time.monotonic() + timeout
    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    while len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < k:
        assert time.monotonic() < deadline, f"fewer than {k} trials finished in {timeout} s"
        time.sleep(0.2)


def _expect_all_finished(procs: list[subprocess.Popen[str]], outputs: list[str], postgres_url: str,
                         study_name: str, n: int, felt: bool = False) -> None:
    """Every worker exited 0 and the study has exactly `n` trials; `felt`: the outage was retried through."""
    if any(p.returncode != 0 for p in procs):
        pytest.fail("\n\n".join(o[-6000:] for o in outputs))
    if felt:
        assert any("storage connection lost" in o for o in outputs), "the outage should have been felt"
    check_exact(postgres_url, study_name, n)


@pytest.mark.slow
def test_sigkilled_worker_trial_is_failed_by_heartbeat_and_retry_resumes_from_checkpoint(
        tmp_path: Path, postgres_url: str, study_name: str, through: str) -> None:
    # Long trials, evaluated and checkpointed every 100 steps; heartbeat every 2 s, stale after 4 s.
    path = write_study(tmp_path, name=study_name, storage=postgres_url, enqueue=[GOOD],
                       base={**LONG_TRIALS, "train": {**LONG_TRIALS["train"], "steps": 2000}})
    with _workers_storage(through, path, tmp_path) as extra:
        victim = worker(path, tmp_path / "data", "--n-trials", "1", *extra)
        run_dir = tmp_path / "trials" / "trial_00000"
        wait_for(run_dir / "checkpoint.pt", victim)  # a checkpoint mid-trial
        time.sleep(1.0)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]
        assert 0 < killed_at < 2000

        time.sleep(5)  # past the grace period: the next worker fails the stale trial and retries it
        rescuer = worker(path, tmp_path / "data", "--n-trials", "1", *extra)
        out = rescuer.communicate(timeout=600)[0]
    assert rescuer.returncode == 0, out
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    retry = trials[1]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == trials[0].params
    # Resumed from the checkpoint: its first report is the evaluation after it (a restart would report 100).
    assert min(retry.intermediate_values) == killed_at + 100
    assert max(trials[0].intermediate_values) >= killed_at
    assert retry.user_attrs["run_dir"] == str(run_dir)


@pytest.mark.slow
def test_four_postgres_workers_forty_trials_none_lost_or_duplicated(tmp_path: Path, postgres_url: str,
                                                                     study_name: str) -> None:
    procs = _short_trial_workers(tmp_path, postgres_url, study_name, steps=20, workers=4, n_trials=40)
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    check_exact(postgres_url, study_name, 40)
    numbers = sorted(t.number for t in optuna.load_study(study_name=study_name, storage=postgres_url).trials)
    assert numbers == list(range(40))


@pytest.mark.slow
def test_sigterm_mid_trial_checkpoints_hands_back_and_retry_resumes(tmp_path: Path, postgres_url: str,
                                                                      study_name: str) -> None:
    path = write_study(tmp_path, name=study_name, storage=postgres_url, enqueue=[GOOD], base=LONG_TRIALS)
    victim = worker(path, tmp_path / "data", "--n-trials", "1")
    run_dir = tmp_path / "trials" / "trial_00000"
    wait_for(run_dir / "checkpoint.pt", victim)
    time.sleep(1.5)  # between two periodic checkpoints
    signalled = time.monotonic()
    victim.send_signal(signal.SIGTERM)
    out = victim.communicate(timeout=60)[0]
    assert time.monotonic() - signalled < 30 and victim.returncode == 0, out
    assert "handed back for retry" in out
    stopped_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped_at < 3000

    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    first, queued = study.get_trials()
    assert first.state == TrialState.FAIL and queued.state == TrialState.WAITING
    assert queued.system_attrs["failed_trial"] == 0 and queued.params == first.params

    rescuer = worker(path, tmp_path / "data", "--n-trials", "1")
    out = rescuer.communicate(timeout=900)[0]
    assert rescuer.returncode == 0, out
    retry = optuna.load_study(study_name=study_name, storage=postgres_url).get_trials()[1]
    assert retry.state == TrialState.COMPLETE
    # Resumed at the step the signal stopped it: the next evaluation is its first report.
    assert min(retry.intermediate_values) == (stopped_at // 100 + 1) * 100
    assert retry.user_attrs["run_dir"] == str(run_dir)


@pytest.mark.slow
def test_workers_survive_every_database_connection_being_terminated(tmp_path: Path, postgres_url: str,
                                                                     study_name: str) -> None:
    procs = _short_trial_workers(tmp_path, postgres_url, study_name, steps=200, workers=2, n_trials=8)
    engine = sqlalchemy.create_engine(postgres_url)
    killed = 0
    for _ in range(8):  # every 2 s, drop every other session on the database
        time.sleep(2)
        with engine.connect() as conn:
            killed += len(conn.execute(sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    engine.dispose()
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert killed >= 8, "the workers should have held connections"
    _expect_all_finished(procs, outputs, postgres_url, study_name, 8)


@pytest.mark.slow
def test_workers_survive_a_storage_proxy_restart(tmp_path: Path, postgres_url: str, study_name: str) -> None:
    # Heartbeat 10 s (stale after 20 s): the proxy's outage and the workers' retry backoff stay within it.
    path = _short_trial_study(tmp_path, postgres_url, study_name, steps=200, heartbeat_s=10)
    port, log = free_port(), tmp_path / "proxy.log"
    extra = ("--storage", f"grpc://127.0.0.1:{port}")
    proxy = start_proxy(path, port, log)
    try:
        warm_cache(path, tmp_path / "data", *extra)
        procs = [worker(path, tmp_path / "data", "--n-trials", "12", *extra) for _ in range(2)]
        _wait_until_finished(postgres_url, study_name, 3)  # the warm-up trial and two of the workers'
        stop_proxy(proxy)  # SIGTERM: the calls in flight finish, then the workers find nobody there
        time.sleep(3)
        proxy = start_proxy(path, port, log)
        outputs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        stop_proxy(proxy)
    _expect_all_finished(procs, outputs, postgres_url, study_name, 12, felt=True)


def _local_cluster(postgres_url: str) -> list[str]:
    """`pg_ctlcluster VERSION main` for the local server under test, or a skip saying why there is none."""
    host = sqlalchemy.engine.make_url(postgres_url).host
    clusters = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    if host not in ("127.0.0.1", "localhost") or not clusters or not shutil.which("pg_ctlcluster") or os.geteuid():
        pytest.skip("restarting PostgreSQL needs the local Debian cluster, pg_ctlcluster and root")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].parent.name, "main"]


@pytest.mark.slow
def test_workers_survive_a_postgres_server_restart(tmp_path: Path, postgres_url: str, study_name: str) -> None:
    cluster = _local_cluster(postgres_url)
    # Heartbeat 10 s (stale after 20 s): the restart and the workers' retry backoff stay within it.
    procs = _short_trial_workers(tmp_path, postgres_url, study_name, steps=200, workers=2, n_trials=12,
                                 heartbeat_s=10)
    _wait_until_finished(postgres_url, study_name, 3)  # the warm-up trial and two of the workers'
    try:
        subprocess.run([*cluster, "restart"], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run([*cluster, "start"], capture_output=True, timeout=120)  # up again whatever happened
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    _expect_all_finished(procs, outputs, postgres_url, study_name, 12, felt=True)
