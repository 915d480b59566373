"""Storage URL → what a worker needs from its storage: the Optuna storage, the claim lock, heartbeat support.

The one place that decides by the URL's scheme:

- `sqlite:///FILE`: one machine; the claim lock is a file lock beside the database;
- `postgresql[+psycopg2]://…`: many machines; the claim lock is an advisory lock in the database;
- `grpc://HOST:PORT`: an `hpsearch storage-proxy` in front of either; it grants the claim
  lock and records heartbeats for the workers behind it.

Every scheme gets heartbeats and the retry of stale trials. The URL is checked, and a
database server must answer a first connection within `connect_timeout_s()` seconds,
before any storage object (or SQLite file) is made.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import optuna
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hpsearch.errors import ConfigError
from hpsearch.io import check_writable
from hpsearch.redaction import remember_secrets
from hpsearch.search.claim import ClaimLock
from hpsearch.search.connection import (
    GRPC_SCHEME,
    call_with_deadline,
    connect_timeout_s,
    engine_kwargs,
    mask_url,
    redact,
)
from hpsearch.search.proxy_client import ProxyClaimLock, open_proxy_storage, parse_grpc_url
from hpsearch.search.storage import ReconnectingRDBStorage, retry_on_disconnect

Scheme = Literal["sqlite", "postgresql", "grpc"]
SUPPORTED_DRIVERS: dict[str, Scheme] = {"sqlite": "sqlite", "postgresql": "postgresql",
                                        "postgresql+psycopg2": "postgresql"}
ALLOWED = "sqlite:///PATH, postgresql+psycopg2://USER@HOST:PORT/DB or grpc://HOST:PORT (a storage proxy)"
STARTUP_RETRY_DELAYS_S = (0.5, 1.0, 2.0)


class Lock(Protocol):
    """The study's claim lock: `acquire` blocks until held, `release` is idempotent."""

    def acquire(self) -> Lock: ...

    def release(self) -> None: ...


@dataclass
class Backend:
    """An opened storage and what goes with its scheme.

    Attributes:
        url: the storage URL (never logged unmasked).
        scheme: sqlite, postgresql or grpc.
        storage: the Optuna storage.
        heartbeats: whether trials record heartbeats (a worker's storage; readers have none).
    """

    url: str
    scheme: Scheme
    storage: optuna.storages.BaseStorage
    heartbeats: bool

    def claim_lock(self, study: str) -> Lock:
        """A new claim lock for the study (see `hpsearch.search.claim`)."""
        return claim_lock(with_driver(self.url), study)


def scheme_of(url: str) -> Scheme:
    """The storage's kind by its URL.

    Raises:
        ConfigError: not a URL hpsearch can use (naming the masked URL and what is allowed).
    """
    remember_secrets(url)
    if url.startswith(GRPC_SCHEME):
        parse_grpc_url(url)  # a malformed proxy URL is refused here, not after a connect timeout
        return "grpc"
    try:
        driver = make_url(url).drivername
    except Exception as exc:  # sqlalchemy.exc.ArgumentError, or ValueError for a bad port
        raise ConfigError(f"storage {mask_url(url)}: not a database URL; use {ALLOWED}") from exc
    if driver not in SUPPORTED_DRIVERS:
        raise ConfigError(f"storage {mask_url(url)}: database {driver!r} is not supported; use {ALLOWED}")
    return SUPPORTED_DRIVERS[driver]


def claim_lock(url: str, study: str) -> Lock:
    """The study's claim lock for this storage URL: held in the database, or granted by a storage proxy."""
    return ProxyClaimLock(url, study) if scheme_of(url) == "grpc" else ClaimLock(url, study)


def open_backend(url: str, heartbeat_s: int | None = None, max_retry: int | None = None,
                 must_exist: bool = False) -> Backend:
    """Open the storage at `url` (the same code for SQLite and PostgreSQL; the proxy's client for grpc://).

    Args:
        url: SQLAlchemy URL, or grpc://HOST:PORT for a storage proxy (whose heartbeat settings apply).
        heartbeat_s: worker heartbeat (None for readers such as the dashboard and reports).
        max_retry: retries of a trial whose heartbeat went stale (None: no retry callback).
        must_exist: refuse to create a new SQLite file (readers of an existing study).

    Raises:
        ConfigError: the URL is not supported or the storage cannot be reached (the URL is
            shown with its password masked); a silent server within the connect timeout.
    """
    scheme = scheme_of(url)
    if scheme == "grpc":
        return Backend(url, scheme, open_proxy_storage(url, heartbeat_s, max_retry), heartbeat_s is not None)
    url = with_driver(url)
    check_storage_url(url, must_exist)
    if scheme == "sqlite" and not must_exist:  # e.g. runs/<study>/ of the default URL, on a fresh machine
        Path(str(make_url(url).database)).parent.mkdir(parents=True, exist_ok=True)
    options = engine_kwargs(url)
    if scheme == "postgresql":
        _probe(url, options, must_exist)
    try:
        with ClaimLock.for_schema(url):  # one process at a time creates (or checks) Optuna's tables
            storage = _open_rdb(url, options, heartbeat_s, max_retry)
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:  # the lock's own connection or file
        raise _cannot_open(url, exc) from exc
    return Backend(url, scheme, storage, bool(heartbeat_s))


def _open_rdb(url: str, options: dict[str, Any], heartbeat_s: int | None,
              max_retry: int | None) -> optuna.storages.RDBStorage:
    try:
        with warnings.catch_warnings():  # heartbeats and their retry callback are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Optuna 5: the stale-trial callback replaces the deprecated RetryFailedTrialCallback.
            callback = (optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                        if max_retry is not None and heartbeat_s else None)
            # A connection dropped just after the probe is retried briefly.
            connect: Callable[..., optuna.storages.RDBStorage] = retry_on_disconnect(
                ReconnectingRDBStorage, "opening the storage", STARTUP_RETRY_DELAYS_S)
            return connect(url, engine_kwargs=options, heartbeat_interval=heartbeat_s,
                           grace_period=2 * heartbeat_s if heartbeat_s else None,
                           heartbeat_stale_trial_callback=callback)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise _cannot_open(url, exc) from exc


def probe_storage(url: str) -> None:
    """Check that the storage at `url` can be used, creating nothing: no study, no SQLite file.

    Run first by everything that is about to create state (a study, a dataset cache), so that an
    unreachable or silent database is one line before anything is written: a PostgreSQL server
    must answer one connection within the connect timeout, a storage proxy must answer as one,
    a SQLite path must be writable.

    Raises:
        ConfigError: naming the (masked) URL and what is wrong.
    """
    scheme = scheme_of(url)
    if scheme == "grpc":
        open_proxy_storage(url, None, None).close()
        return
    url = with_driver(url)
    check_storage_url(url)
    if scheme == "postgresql":
        _probe(url, engine_kwargs(url))


def with_driver(url: str) -> str:
    """`postgresql://…` with the driver hpsearch installs (psycopg2) named: SQLAlchemy 2.1's default for a bare
    `postgresql://` is psycopg 3, which is not installed, so the bare form would fail with an import error."""
    if scheme_of(url) != "postgresql" or make_url(url).drivername != "postgresql":
        return url
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def check_storage_url(url: str, must_exist: bool = False) -> None:
    """A storage URL hpsearch can use, with a usable SQLite path (nothing is created).

    Raises:
        ConfigError: naming the (masked) URL, what is wrong and what is allowed.
    """
    if scheme_of(url) != "sqlite":
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError(f"storage {mask_url(url)}: needs a file (an in-memory database is lost when the "
                          "process ends and workers cannot share it); use sqlite:///runs/NAME/study.db")
    path = Path(database)
    if must_exist and not path.is_file():
        raise ConfigError(f"storage {url}: no such SQLite file")
    check_writable(path, "storage", is_dir=False)  # SQLite writes a journal beside the file, even to read


def _probe(url: str, options: dict[str, Any], must_exist: bool = False) -> None:
    """Open and close one connection to the server, within the connect timeout (plus a margin).

    With `must_exist` (a reader: status, report, export, dashboard) the database must hold Optuna's
    tables: opening the storage would otherwise create them in a database that has no study.
    """

    def connect() -> bool:
        with engine.connect() as conn:
            return bool(sqlalchemy.inspect(conn).has_table("studies"))

    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=options["connect_args"])
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:  # e.g. the driver is not installed
        raise _cannot_open(url, exc) from exc
    timeout = connect_timeout_s()
    try:
        has_tables = call_with_deadline(connect, timeout + 5, "connecting")
    except TimeoutError as exc:
        raise ConfigError(f"storage {mask_url(url)}: the server did not answer within {timeout} s (a firewall, "
                          "or not a PostgreSQL server?); set $HPSEARCH_CONNECT_TIMEOUT to wait longer") from exc
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise _cannot_open(url, exc) from exc
    finally:
        engine.dispose()
    if must_exist and not has_tables:
        raise ConfigError(f"storage {mask_url(url)}: holds no hpsearch study (the database has no Optuna tables); "
                          "check the URL, or create the study with `hpsearch run`")


def _cannot_open(url: str, exc: BaseException) -> ConfigError:
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ else exc
    detail = str(getattr(cause, "orig", None) or cause).strip()
    if "timeout expired" in detail:
        detail = f"the server did not answer within {connect_timeout_s()} s"
    first = " ".join(detail.split("\n")[0].split()) or type(cause).__name__
    return ConfigError(f"storage {mask_url(url)}: cannot be opened ({type(cause).__name__}: {redact(first, url)})")
