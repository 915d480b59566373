"""The storage proxy's claim lock and bad input; its worker tests on PostgreSQL are in test_workers_postgres."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.errors import ConfigError
from hpsearch.search.backend import open_backend, storage_kind
from hpsearch.search.proxy_client import ProxyClaimLock, ProxyStorage
from hpsearch.search.proxy_server import Coordinator
from hpsearch.search.storage_url import StorageURL
from hpsearch.serving import check_bind, warn_exposure
from tests.search.helpers import ROOT, free_port, storage_proxy, write_study


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpsearch.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.fixture(params=["sqlite", "postgres"])
def lock_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL whose claim lock is a file lock (SQLite) or an advisory lock (PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_try_acquire_fails_while_the_lock_is_held_and_succeeds_after_release(lock_url: str,
                                                                             study_name: str) -> None:
    first, second = storage_kind(lock_url).claim_lock(study_name), storage_kind(lock_url).claim_lock(study_name)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert storage_kind(lock_url).claim_lock(study_name + "_other").try_acquire()  # one lock per study
    first.release()
    assert second.try_acquire()
    second.release()


def test_proxy_grants_one_claim_at_a_time_and_takes_back_an_expired_one(lock_url: str, study_name: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    rdb = open_backend(lock_url, heartbeat_s=2, max_retry=1).storage
    assert isinstance(rdb, optuna.storages.RDBStorage)
    coordinator = Coordinator(rdb, storage_kind(lock_url), heartbeat_s=2, max_retry=1,  # type: ignore[arg-type]
                              lease_s=0.5)
    token = coordinator.try_claim(study_name)["token"]
    assert token and coordinator.try_claim(study_name)["token"] is None
    assert not storage_kind(lock_url).claim_lock(study_name).try_acquire()  # held in the database: workers wait
    coordinator.release(study_name, "not-the-token")
    assert coordinator.try_claim(study_name)["token"] is None
    coordinator.release(study_name, token)
    token = coordinator.try_claim(study_name)["token"]
    assert token
    time.sleep(0.6)  # its worker died between claim and trial start: the lease runs out
    with caplog.at_level(logging.WARNING):
        again = coordinator.try_claim(study_name)["token"]
    assert again and again != token and "taken back" in caplog.text
    coordinator.release(study_name, token)  # the late release of the expired claim changes nothing
    assert coordinator.try_claim(study_name)["token"] is None
    coordinator.close()
    assert storage_kind(lock_url).claim_lock(study_name).try_acquire()
    with pytest.raises(ValueError, match="not a study name"):  # a lock file's path must not come from a client
        coordinator.try_claim("../../escape")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_workers_behind_a_proxy_get_its_heartbeat_and_claim_lock(tmp_path: Path, study_name: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = write_study(tmp_path, name=study_name, heartbeat_s=3, max_retry=4)
    with storage_proxy(path, tmp_path / "proxy.log") as url:
        with caplog.at_level(logging.WARNING):
            storage = open_backend(url, heartbeat_s=30, max_retry=2).storage
        assert isinstance(storage, ProxyStorage)
        assert storage.get_heartbeat_interval() == 3 and storage.max_retry == 4  # the proxy's settings win
        assert "the storage proxy's 3 s applies" in caplog.text
        reader = open_backend(url).storage  # reports and status: no heartbeats, no retries
        assert reader.get_heartbeat_interval() is None  # type: ignore[attr-defined]
        study = optuna.create_study(study_name=study_name, storage=storage)
        trial = study.ask()
        storage.record_heartbeat(trial._trial_id)
        assert storage._get_stale_trial_ids(study._study_id) == []
        lock = storage_kind(url).claim_lock(study_name)
        assert isinstance(lock, ProxyClaimLock)
        lock.acquire()
        assert not storage_kind(f"sqlite:///{tmp_path / 'study.db'}").claim_lock(study_name).try_acquire()
        lock.release()
        lock.release()  # idempotent, as the worker calls it at trial start and again after the trial
        assert storage_kind(f"sqlite:///{tmp_path / 'study.db'}").claim_lock(study_name).try_acquire()


@pytest.mark.parametrize("url", ["grpc://", "grpc://host", "grpc://:13000", "grpc://host:0", "grpc://host:port"])
def test_malformed_proxy_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"grpc://HOST:PORT"):
        StorageURL.parse(url)


@pytest.mark.parametrize("command", ["worker", "run"])
def test_no_proxy_at_the_url_exits_2_with_one_line_before_the_data_is_cached(tmp_path: Path, command: str) -> None:
    # A fresh data folder: the storage is probed before the dataset is cached (and its progress line logged).
    path = write_study(tmp_path)
    run = _cli(command, str(path), "--storage", f"grpc://127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d"))
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "no storage proxy answers" in run.stderr, run.stderr
    assert not (tmp_path / "study.db").exists() and not (tmp_path / "d").exists()


def test_proxy_refuses_another_proxy_as_its_database_and_a_taken_port(tmp_path: Path) -> None:
    path = write_study(tmp_path)
    run = _cli("storage-proxy", str(path), "--storage", "grpc://127.0.0.1:13000")
    assert run.returncode == 2 and "not another proxy" in run.stderr and "Traceback" not in run.stderr
    run = _cli("storage-proxy", str(path), "--port", "70000")
    assert run.returncode == 2 and "--port: must be in 1..65535" in run.stderr
    with storage_proxy(path, tmp_path / "proxy.log") as url:
        run = _cli("storage-proxy", str(path), "--port", url.rsplit(":", 1)[1])
    assert run.returncode == 2 and "cannot listen on" in run.stderr and "Traceback" not in run.stderr


def test_proxy_bound_beyond_localhost_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_exposure("storage proxy", "127.0.0.1", "can read and change every study")
        assert not caplog.text
        warn_exposure("storage proxy", "0.0.0.0", "can read and change every study")
    assert "bound to 0.0.0.0" in caplog.text and "no authentication" in caplog.text


def test_the_address_is_probed_before_anything_logs() -> None:
    """A taken port or an unknown host is one line, before the server (or gRPC's own logging) starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{port} \(Address already in use\)"):
            check_bind("storage proxy", "127.0.0.1", port)
    with pytest.raises(ConfigError, match="host 'no-such-host.invalid' is not a name or address"):
        check_bind("storage proxy", "no-such-host.invalid", 13000)
