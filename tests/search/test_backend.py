"""Storage URL → StorageURL → kind of storage → backend: decided once by scheme, tested here for every scheme."""

from __future__ import annotations

import sqlite3
import typing
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy.event
import sqlalchemy.exc
import sqlalchemy.pool

from hpsearch.errors import ConfigError
from hpsearch.search import (
    KINDS,
    PrunerConfig,
    SamplerConfig,
    StorageURL,
    load_study_config,
    make_pruner,
    make_sampler,
    open_backend,
    run_worker,
    storage_kind,
)
from hpsearch.search.claim import ClaimLock
from hpsearch.search.connection import is_disconnect, is_permanent
from hpsearch.search.proxy_client import ProxyClaimLock, ProxyStorage
from hpsearch.search.storage import ReconnectingRDBStorage
from hpsearch.visualize import FigureOptions, draw_figure
from tests.search.helpers import storage_proxy, write_study


@pytest.mark.parametrize(("url", "scheme"), [
    ("sqlite:///runs/x/study.db", "sqlite"), ("postgresql://u@h/db", "postgresql"),
    ("postgresql+psycopg2://u:pw@h:5432/db", "postgresql"), ("grpc://10.0.0.5:13000", "grpc")])
def test_every_supported_url_is_parsed_once_into_its_scheme_and_kind(url: str, scheme: str) -> None:
    parsed = StorageURL.parse(url)
    assert parsed.scheme == scheme and StorageURL.parse(parsed) is parsed
    assert type(storage_kind(parsed)) is KINDS[scheme]  # type: ignore[index]
    assert "pw" not in f"{parsed} {parsed!r} {parsed.masked} {parsed.masked_text}"  # printed, it is masked


def test_a_parsed_url_holds_its_parts_and_names_the_installed_driver() -> None:
    pg = StorageURL.parse("postgresql://u:pw@db.example:6543/hp")
    assert (pg.host, pg.port, pg.database) == ("db.example", 6543, "hp")
    assert pg.text.startswith("postgresql+psycopg2://") and pg.given.startswith("postgresql://")
    assert StorageURL.parse("sqlite:///runs/x/study.db").path == Path("runs/x/study.db")
    proxy = StorageURL.parse("grpc://[::1]:13000")
    assert (proxy.host, proxy.port) == ("::1", 13000)


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:hunter2@h/db", "database 'mysql' is not supported"), ("not a url", "not a database URL"),
    ("postgresql+asyncpg://u@h/db", "is not supported"),
    ("postgresql://u:hunter2@h:99999/db", "port 99999 is not a TCP")])
def test_unsupported_urls_are_refused_naming_what_is_allowed(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        StorageURL.parse(url)
    assert "grpc://HOST:PORT" in str(caught.value) and "hunter2" not in str(caught.value)


def _check(backend: object, storage_type: type, lock_type: type, heartbeats: bool, study: str) -> None:
    assert isinstance(backend.storage, storage_type)  # type: ignore[attr-defined]
    assert backend.heartbeats is heartbeats  # type: ignore[attr-defined]
    lock = backend.claim_lock(study).acquire()  # type: ignore[attr-defined]
    assert isinstance(lock, lock_type)
    lock.release()


@pytest.mark.parametrize("heartbeat", [None, 5])
def test_sqlite_backend(tmp_path: Path, heartbeat: int | None, study_name: str) -> None:
    backend = open_backend(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_s=heartbeat, max_retry=1)
    assert backend.scheme == "sqlite"
    _check(backend, ReconnectingRDBStorage, ClaimLock, heartbeat is not None, study_name)
    assert backend.storage.get_heartbeat_interval() == heartbeat  # type: ignore[attr-defined]


def test_a_new_sqlite_file_gets_its_folder_and_a_missing_one_is_one_line_without_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The default URL, sqlite:///runs/<study>/study.db, on a fresh machine: runs/<study>/ does not exist yet."""
    monkeypatch.chdir(tmp_path)
    backend = open_backend("sqlite:///runs/fresh/study.db", heartbeat_s=5, max_retry=1)
    optuna.create_study(study_name="fresh", storage=backend.storage)
    assert (tmp_path / "runs" / "fresh" / "study.db").is_file()
    with pytest.raises(ConfigError, match="no such SQLite file"):  # a reader creates nothing
        open_backend("sqlite:///runs/other/study.db", must_exist=True)
    assert not (tmp_path / "runs" / "other").exists()
    assert "retrying" not in caplog.text
    # What SQLite says when it cannot create or open the file (as root here, no folder is unwritable): not retried.
    error = sqlalchemy.exc.OperationalError("connect", {}, sqlite3.OperationalError("unable to open database file"))
    assert is_permanent(error) and not is_disconnect(error)


def test_postgres_backend(postgres_url: str, study_name: str) -> None:
    backend = open_backend(postgres_url, heartbeat_s=5, max_retry=1)
    assert backend.scheme == "postgresql"
    _check(backend, ReconnectingRDBStorage, ClaimLock, True, study_name)
    assert open_backend(postgres_url).heartbeats is False  # readers: no heartbeats


def test_proxy_backend(tmp_path: Path, study_name: str) -> None:
    pytest.importorskip("grpc")
    path = write_study(tmp_path, name=study_name, heartbeat_s=3)
    with storage_proxy(path, tmp_path / "proxy.log") as url:
        backend = open_backend(url, heartbeat_s=3, max_retry=1)
        assert backend.scheme == "grpc"
        _check(backend, ProxyStorage, ProxyClaimLock, True, study_name)
        assert open_backend(url).heartbeats is False


def test_the_registries_hold_exactly_the_names_a_study_file_allows(tmp_path: Path) -> None:
    """The study file's types are what refuses an unknown sampler or pruner; each name they allow must be in its
    registry, and the registry must hold no name they refuse."""
    from hpsearch.search.pruners import PRUNERS
    from hpsearch.search.samplers import SAMPLERS

    for config, registry in ((SamplerConfig, SAMPLERS), (PrunerConfig, PRUNERS)):
        allowed = typing.get_args(typing.get_type_hints(config)["name"])
        assert sorted(allowed) == sorted(registry), (config.__name__, allowed, sorted(registry))
    for section, name in (("sampler", "cmaes"), ("pruner", "asha")):
        with pytest.raises(ConfigError, match=rf"study.yaml: {section}.name: must be one of \[.*\]; got '{name}'"):
            load_study_config(write_study(tmp_path, **{section: {"name": name}}))
    with pytest.raises(ConfigError, match=r"figure 'saliency': unknown; choose from \['attention', 'style-mixing'\]"):
        draw_figure("saliency", None, 8, FigureOptions(), tmp_path / "x.png")  # type: ignore[arg-type]
    assert isinstance(make_sampler(SamplerConfig(name="tpe")), optuna.samplers.TPESampler)
    assert isinstance(make_pruner(PrunerConfig(name="none"), 100, 10), optuna.pruners.NopPruner)


def test_a_worker_start_on_postgres_probes_once_and_opens_once(tmp_path: Path,
                                                              fresh_postgres: Callable[[], str]) -> None:
    """Every new connection to the server during a worker's start, counted by the engine that made it.

    Before the storage became one object, a start made 5 engines and 6 connections: two probes (one
    before the data was cached, one again when opening), an engine for the schema lock, Optuna's, and
    one more per claim lock. Now the kind's one engine serves the probe and the locks, and Optuna's opens the
    storage: two engines; the kind's made the probe, the schema lock and the creation's claim lock.
    """
    connections: list[int] = []

    def count(_dbapi: object, record: object) -> None:
        connections.append(id(record._ConnectionRecord__pool))  # type: ignore[attr-defined]

    loaded = load_study_config(write_study(tmp_path, storage=fresh_postgres()))
    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", count)
    try:
        run_worker(loaded, tmp_path / "data", "cpu", stop=lambda: True)  # starts, then stops before a trial
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", count)
    per_engine = sorted(Counter(connections).values())
    assert len(per_engine) == 2, per_engine  # one engine for the probe and the locks, one for Optuna's storage
    kind_engine = Counter(connections)[connections[0]]  # the probe is the first connection
    assert kind_engine == 3, per_engine  # the one probe, the schema lock, the claim lock of the study's creation
