"""Storage URL → what a worker needs from its storage: the Optuna storage, the claim lock, heartbeats.

One class per kind of storage, registered by scheme in `KINDS`; each owns its probe, how it
opens the Optuna storage, its claim lock and its engine options (adding a kind of storage is
one class):

- `sqlite:///FILE` (`SQLiteKind`): one machine; the claim lock is a file lock beside the database;
- `postgresql[+psycopg2]://…` (`PostgresKind`): many machines; the claim lock is an advisory
  lock in the database, taken through one engine the kind keeps (the probe uses it too);
- `grpc://HOST:PORT` (`ProxyKind`): an `hpsearch storage-proxy` in front of either; it grants
  the claim lock and records heartbeats for the workers behind it.

Every kind gets heartbeats and the retry of stale trials. A database server must answer a
first connection within `connect_timeout_s()` seconds before any storage object (or SQLite
file) is made. A worker probes once before it caches data and opens once after
(`StorageKind.probe`, then `StorageKind.open`); a reader calls `open_backend`, which does both.
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.pool import NullPool

from hpsearch.environment import connect_timeout_s
from hpsearch.errors import ConfigError
from hpsearch.io import check_writable
from hpsearch.search.claim import ClaimLock
from hpsearch.search.connection import call_with_deadline, redact
from hpsearch.search.proxy_client import ProxyClaimLock, open_proxy_storage
from hpsearch.search.storage import ReconnectingRDBStorage, retry_on_disconnect
from hpsearch.search.storage_url import Scheme, StorageURL

STARTUP_RETRY_DELAYS_S = (0.5, 1.0, 2.0)
SQLITE_BUSY_TIMEOUT_S = 120  # a worker waits this long for another's write lock on the SQLite file
POOL_RECYCLE_S = 300  # a pooled PostgreSQL connection older than this is replaced (servers and NATs drop idle ones)
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 30, 10, 3  # a vanished server is noticed in about 1 min


class Lock(Protocol):
    """The study's claim lock: `acquire` blocks until held, `release` is idempotent."""

    def acquire(self) -> Lock: ...

    def release(self) -> None: ...


class StorageKind(ABC):
    """One kind of storage, for one parsed URL: its probe, its Optuna storage and its claim lock."""

    OPENING_PROBES = False  # opening checks everything the probe would (a reader need not probe first)

    def __init__(self, url: StorageURL) -> None:
        self.url = url

    @abstractmethod
    def probe(self, must_exist: bool = False) -> None:
        """Check that the storage can be used, creating nothing (no study, no SQLite file).

        Run first by everything that is about to create state (a study, a dataset cache), so that
        an unreachable or silent storage is one line before anything is written.

        Args:
            must_exist: a reader (status, report, export, dashboard): the storage must hold studies.

        Raises:
            ConfigError: naming the (masked) URL and what is wrong.
        """

    @abstractmethod
    def open(self, heartbeat_s: int | None, max_retry: int | None, must_exist: bool) -> optuna.storages.BaseStorage:
        """The Optuna storage (after `probe`, which this does not repeat)."""

    @abstractmethod
    def claim_lock(self, study: str) -> Lock:
        """A new claim lock for the study (see `hpsearch.search.claim`)."""


@dataclass
class Backend:
    """An opened storage and the kind it is.

    Attributes:
        kind: the storage's kind, holding its parsed URL (never logged unmasked).
        storage: the Optuna storage.
        heartbeats: whether trials record heartbeats (a worker's storage; readers have none).
    """

    kind: StorageKind
    storage: optuna.storages.BaseStorage
    heartbeats: bool

    @property
    def url(self) -> StorageURL:
        return self.kind.url

    @property
    def scheme(self) -> Scheme:
        return self.kind.url.scheme

    def claim_lock(self, study: str) -> Lock:
        """A new claim lock for the study (see `hpsearch.search.claim`)."""
        return self.kind.claim_lock(study)


class DatabaseKind(StorageKind):
    """A database opened directly through SQLAlchemy: Optuna's RDB storage, retrying lost connections."""

    @abstractmethod
    def engine_options(self) -> dict[str, Any]:
        """SQLAlchemy engine options for this database."""

    def open(self, heartbeat_s: int | None, max_retry: int | None, must_exist: bool) -> optuna.storages.BaseStorage:
        try:
            with self.schema_lock():  # one process at a time creates (or checks) Optuna's tables
                return self._open_rdb(heartbeat_s, max_retry)
        except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:  # the lock's own connection or file
            raise self.cannot_open(exc) from exc

    @abstractmethod
    def claim_lock(self, study: str) -> ClaimLock:
        """The study's claim lock, which can also be tried without waiting (as the storage proxy does)."""

    @abstractmethod
    def schema_lock(self) -> ClaimLock:
        """The database-wide lock around creating Optuna's tables (see `ClaimLock.for_schema`)."""

    def _open_rdb(self, heartbeat_s: int | None, max_retry: int | None) -> optuna.storages.RDBStorage:
        try:
            with warnings.catch_warnings():  # heartbeats and their retry callback are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # Optuna 5: the stale-trial callback replaces the deprecated RetryFailedTrialCallback.
                callback = (optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                            if max_retry is not None and heartbeat_s else None)
                # A connection dropped just after the probe is retried briefly.
                connect: Callable[..., optuna.storages.RDBStorage] = retry_on_disconnect(
                    ReconnectingRDBStorage, "opening the storage", STARTUP_RETRY_DELAYS_S)
                return connect(self.url.text, engine_kwargs=self.engine_options(), heartbeat_interval=heartbeat_s,
                               grace_period=2 * heartbeat_s if heartbeat_s else None,
                               heartbeat_stale_trial_callback=callback)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError,
                ValueError) as exc:
            raise self.cannot_open(exc) from exc

    def cannot_open(self, exc: BaseException) -> ConfigError:
        """The one-line error for a storage that could not be opened, with the driver's reason, password-free."""
        cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ else exc
        detail = str(getattr(cause, "orig", None) or cause).strip()
        if "timeout expired" in detail:
            detail = f"the server did not answer within {connect_timeout_s()} s"
        first = " ".join(detail.split("\n")[0].split()) or type(cause).__name__
        return ConfigError(f"storage {self.url.masked_text}: cannot be opened "
                           f"({type(cause).__name__}: {redact(first, self.url.text)})")


class SQLiteKind(DatabaseKind):
    """`sqlite:///FILE`: one machine; the file's folder is made when a study is created there."""

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}

    def probe(self, must_exist: bool = False) -> None:
        """The file's folder must be writable (SQLite writes a journal beside the file, even to read); a reader's
        file must exist and hold Optuna's tables, read without writing (opening the storage would create them
        in any SQLite file, a stranger's too)."""
        path = self.url.path
        assert path is not None
        try:
            present: bool | None = path.is_file()
        except OSError:  # e.g. a name too long: check_writable names what is wrong
            present = None
        if must_exist and present is False:
            raise ConfigError(f"storage {self.url.masked}: no such SQLite file")
        check_writable(path, "storage", is_dir=False)
        if must_exist and not self._has_studies(path):
            raise ConfigError(f"storage {self.url.masked}: holds no hpsearch study (the file has no Optuna tables); "
                              "check the URL, or create the study with `hpsearch run`")

    def _has_studies(self, path: Path) -> bool:
        try:
            with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                                    timeout=SQLITE_BUSY_TIMEOUT_S)) as conn:
                return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'")\
                    .fetchone() is not None
        except sqlite3.DatabaseError as exc:  # not a SQLite file
            raise self.cannot_open(exc) from exc

    def open(self, heartbeat_s: int | None, max_retry: int | None, must_exist: bool) -> optuna.storages.BaseStorage:
        assert self.url.path is not None
        if not must_exist:  # e.g. runs/<study>/ of the default URL, on a fresh machine
            self.url.path.parent.mkdir(parents=True, exist_ok=True)
        return super().open(heartbeat_s, max_retry, must_exist)

    def schema_lock(self) -> ClaimLock:
        assert self.url.path is not None
        return ClaimLock.for_schema(self.url.path)

    def claim_lock(self, study: str) -> ClaimLock:
        assert self.url.path is not None
        return ClaimLock.beside(self.url.path, study)


class PostgresKind(DatabaseKind):
    """`postgresql[+psycopg2]://…`: many machines; every lock and the probe go through one engine."""

    def __init__(self, url: StorageURL) -> None:
        super().__init__(url)
        self._engine: sqlalchemy.Engine | None = None

    def engine_options(self) -> dict[str, Any]:
        """`connect_timeout` bounds opening a connection (a server that accepts and never answers, a
        firewalled host); TCP keepalives notice a server that vanished mid-call, which would otherwise
        leave a worker blocked in a read forever."""
        return {"pool_pre_ping": True, "pool_recycle": POOL_RECYCLE_S,
                "connect_args": {"connect_timeout": connect_timeout_s(), "keepalives": 1,
                                 "keepalives_idle": KEEPALIVE_IDLE_S, "keepalives_interval": KEEPALIVE_INTERVAL_S,
                                 "keepalives_count": KEEPALIVE_COUNT}}

    @property
    def engine(self) -> sqlalchemy.Engine:
        """The engine of the probe and the locks: unpooled (a lock is held by its connection), made once."""
        if self._engine is None:
            try:
                self._engine = sqlalchemy.create_engine(self.url.text, poolclass=NullPool,
                                                        connect_args=self.engine_options()["connect_args"])
            except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:  # e.g. no driver installed
                raise self.cannot_open(exc) from exc
        return self._engine

    def probe(self, must_exist: bool = False) -> None:
        """Open and close one connection to the server, within the connect timeout (plus a margin).

        With `must_exist` the database must hold Optuna's tables: opening the storage would
        otherwise create them in a database that has no study.
        """

        engine = self.engine  # made in this thread: a missing driver is an error of its own, not the deadline's

        def connect() -> bool:
            with engine.connect() as conn:
                return bool(sqlalchemy.inspect(conn).has_table("studies"))

        timeout = connect_timeout_s()
        try:
            has_tables = call_with_deadline(connect, timeout + 5, "connecting")
        except TimeoutError as exc:
            raise ConfigError(f"storage {self.url.masked_text}: the server did not answer within {timeout} s (a "
                              "firewall, or not a PostgreSQL server?); set $HPSEARCH_CONNECT_TIMEOUT to wait "
                              "longer") from exc
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise self.cannot_open(exc) from exc
        if must_exist and not has_tables:
            raise ConfigError(f"storage {self.url.masked_text}: holds no hpsearch study (the database has no Optuna "
                              "tables); check the URL, or create the study with `hpsearch run`")

    def schema_lock(self) -> ClaimLock:
        return ClaimLock.for_schema(self.engine)

    def claim_lock(self, study: str) -> ClaimLock:
        return ClaimLock.advisory(self.engine, study)


class ProxyKind(StorageKind):
    """`grpc://HOST:PORT`: an `hpsearch storage-proxy`, which grants claims and records heartbeats."""

    OPENING_PROBES = True  # the client's first call has a deadline and must be answered as a proxy

    def probe(self, must_exist: bool = False) -> None:
        open_proxy_storage(self.url, None, None).close()

    def open(self, heartbeat_s: int | None, max_retry: int | None, must_exist: bool) -> optuna.storages.BaseStorage:
        return open_proxy_storage(self.url, heartbeat_s, max_retry)

    def claim_lock(self, study: str) -> Lock:
        return ProxyClaimLock(self.url, study)


KINDS: dict[Scheme, type[StorageKind]] = {"sqlite": SQLiteKind, "postgresql": PostgresKind, "grpc": ProxyKind}


def storage_kind(url: str | StorageURL) -> StorageKind:
    """The kind of storage at `url` (parsed here when it is still a string), unopened and unprobed.

    Raises:
        ConfigError: not a URL hpsearch can use.
    """
    parsed = StorageURL.parse(url)
    return KINDS[parsed.scheme](parsed)


def open_backend(url: str | StorageURL | StorageKind, heartbeat_s: int | None = None, max_retry: int | None = None,
                 must_exist: bool = False, probe: bool = True) -> Backend:
    """Open the storage at `url`: probe it (unless the caller did), then open it.

    Args:
        url: a storage URL (SQLAlchemy's, or grpc://HOST:PORT for a storage proxy, whose heartbeat
            settings apply), or the kind of storage a caller has probed already.
        heartbeat_s: worker heartbeat (None for readers such as the dashboard and reports).
        max_retry: retries of a trial whose heartbeat went stale (None: no retry callback).
        must_exist: refuse to create a new SQLite file or Optuna's tables (readers of an existing study).
        probe: False when the caller probed this kind already (a worker, before it cached its data).

    Raises:
        ConfigError: the URL is not supported or the storage cannot be reached (the URL is
            shown with its password masked); a silent server within the connect timeout.
    """
    kind = url if isinstance(url, StorageKind) else storage_kind(url)
    if probe and not kind.OPENING_PROBES:
        kind.probe(must_exist)
    storage = kind.open(heartbeat_s, max_retry, must_exist)
    # Read from the storage, not decided by scheme: a proxy's interval is its own, a database's the study's.
    return Backend(kind, storage, bool(storage.get_heartbeat_interval()))  # type: ignore[attr-defined]
