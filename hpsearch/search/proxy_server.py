"""`hpsearch storage-proxy`: Optuna's gRPC storage proxy, plus the heartbeats and claim lock workers need.

Hundreds of workers that each hold database connections and each re-read the trials table
can exhaust a PostgreSQL server; Optuna's gRPC storage proxy puts one process in front of the
database that all workers talk to (`--storage grpc://HOST:PORT`), and caches trials there.
Optuna's proxy protocol has no heartbeats and no lock, so behind it a dead worker's trial
would stay RUNNING forever and K workers would overshoot the trial count. This module adds a
second, small gRPC service on the same port (its protocol: `hpsearch.search.proxy_client`):

- heartbeats and stale-trial queries are answered by the proxy's own RDB storage, so the
  database's clock decides staleness exactly as it does without the proxy;
- the study's claim lock (`hpsearch.search.claim`) is taken by the proxy on a worker's
  behalf, with a lease, so that a worker that dies holding it cannot block the study;
- the heartbeat interval and retry count come from the proxy's study file: one source of
  truth for every worker behind it.

A restarted proxy answers for every trial in its database (`ProxyBackend`), so workers
carry on through a restart with the trials they were running.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from hpsearch.errors import ConfigError
from hpsearch.search.backend import DatabaseKind, open_backend, storage_kind
from hpsearch.search.claim import ClaimLock
from hpsearch.search.optuna_private import CachedStorage, grpc_servicer
from hpsearch.search.proxy_client import SERVICE, decode, encode, require_grpc
from hpsearch.search.study_file import STUDY_NAME, LoadedStudy
from hpsearch.serving import address, check_bind, warn_exposure

try:
    import grpc
except ImportError:  # pragma: no cover - require_grpc says what to install
    grpc = None

_logger = logging.getLogger(__name__)
DEFAULT_PORT = 13000
LEASE_S = 120.0  # a claim not released by then belongs to a worker that died between claim and trial start


class ProxyBackend(CachedStorage):
    """Optuna's caching storage wrapper, answering for every trial in the database.

    Optuna's wrapper knows only the trials it created or has read. A proxy started while
    workers are mid-trial (a restart) would answer NOT_FOUND when a worker writes a parameter
    of a trial it has not read yet, and that worker's trial would fail. Here an unknown trial
    makes the wrapper read the studies' trials once, then the write is done.
    """

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        try:
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        except KeyError:  # a trial created before this proxy started: read it, then write
            self._read_every_study()
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def _read_every_study(self) -> None:
        for study in self.get_all_studies():
            self.get_all_trials(self.get_study_id_from_name(study.study_name), deepcopy=False)

# ----------------------------------------------------------------------------- server


class Coordinator:
    """The proxy's side of the extra service: settings, heartbeats, stale trials and claims.

    Args:
        rdb: the proxy's RDB storage, with the study's heartbeat settings.
        kind: the database's kind (the claim lock lives in the same database).
        heartbeat_s, max_retry: handed to every worker behind the proxy.
        lease_s: how long a claim may be held before the proxy takes it back.
    """

    def __init__(self, rdb: optuna.storages.RDBStorage, kind: DatabaseKind, heartbeat_s: int, max_retry: int,
                 lease_s: float = LEASE_S) -> None:
        self._rdb, self._kind, self._lease_s = rdb, kind, lease_s
        self._settings = {"heartbeat_s": heartbeat_s, "max_retry": max_retry}
        self._locks: dict[str, ClaimLock] = {}
        self._claims: dict[str, tuple[str, float]] = {}  # study → (token, time granted)
        self._mutex = threading.Lock()

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def heartbeat(self, trial_id: int) -> dict[str, Any]:
        self._rdb.record_heartbeat(trial_id)
        return {}

    def stale_trials(self, study_id: int) -> dict[str, Any]:
        return {"trial_ids": self._rdb._get_stale_trial_ids(study_id)}

    def try_claim(self, study: str) -> dict[str, Any]:
        """A token when the study's claim lock was free (now held for the caller), else None.

        Raises:
            ValueError: not a valid study name (on SQLite the name becomes part of a lock file's path).
        """
        if not STUDY_NAME.fullmatch(study):
            raise ValueError(f"not a study name: {study!r}")
        with self._mutex:
            self._expire(study)
            lock = self._locks.setdefault(study, self._kind.claim_lock(study))
            if study in self._claims or not lock.try_acquire():
                return {"token": None}
            token = uuid.uuid4().hex
            self._claims[study] = (token, time.monotonic())
            return {"token": token}

    def release(self, study: str, token: str) -> dict[str, Any]:
        """Release the claim if `token` still holds it (a claim taken back after its lease is not released twice)."""
        with self._mutex:
            if self._claims.get(study, ("", 0.0))[0] == token:
                self._drop(study)
        return {}

    def _expire(self, study: str) -> None:
        token, granted = self._claims.get(study, ("", 0.0))
        if token and time.monotonic() - granted > self._lease_s:
            _logger.warning("claim on study %s not released within %.0f s (its worker died?): taken back",
                            study, self._lease_s)
            self._drop(study)

    def _drop(self, study: str) -> None:
        del self._claims[study]
        self._locks[study].release()

    def close(self) -> None:
        with self._mutex:
            for lock in self._locks.values():
                lock.release()
            self._claims.clear()

    def handler(self) -> Any:
        """The gRPC handler of the service, to add to the proxy's server before it starts."""
        methods: dict[str, Callable[..., dict[str, Any]]] = {
            "Settings": self.settings, "Heartbeat": self.heartbeat, "StaleTrials": self.stale_trials,
            "TryClaim": self.try_claim, "Release": self.release}
        return grpc.method_handlers_generic_handler(SERVICE, {
            name: grpc.unary_unary_rpc_method_handler(lambda request, _context, f=f: f(**request),
                                                      request_deserializer=decode, response_serializer=encode)
            for name, f in methods.items()})


def serve_storage_proxy(loaded: LoadedStudy, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                        threads: int = 64) -> None:
    """Serve the study's database to workers until SIGTERM or SIGINT.

    Args:
        loaded: the study file: its storage (the database), heartbeat and retry settings.
        threads: concurrent requests (each worker's heartbeat thread and main thread may both call).

    Raises:
        ConfigError: grpcio is missing, the storage is itself a proxy, the database cannot be
            opened, or the address cannot be bound.
    """
    require_grpc()
    url = loaded.storage
    kind = storage_kind(url)
    if not isinstance(kind, DatabaseKind):
        raise ConfigError(f"storage-proxy: the storage must be the database (sqlite:///... or "
                          f"postgresql+psycopg2://...), not another proxy; got {url.masked}")
    check_bind("storage proxy", host, port)
    rdb = open_backend(kind, loaded.cfg.heartbeat_s, loaded.cfg.max_retry).storage
    assert isinstance(rdb, optuna.storages.RDBStorage)  # a database's kind opens Optuna's RDB storage
    coordinator = Coordinator(rdb, kind, loaded.cfg.heartbeat_s, loaded.cfg.max_retry)
    server = make_server(ProxyBackend(rdb), coordinator, host, port, threads)
    warn_exposure("storage proxy", host, "can read and change every study in the database")
    server.start()
    stopped = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    _logger.info("storage proxy for %s listening on %s (heartbeat %d s, stale after %d s); workers use "
                 "the storage grpc://%s; Ctrl-C stops it", url.masked, address(host, port), loaded.cfg.heartbeat_s,
                 2 * loaded.cfg.heartbeat_s, address(host, port))
    try:
        stopped.wait()
    finally:
        _logger.info("storage proxy stopping: finishing the requests in flight")
        server.stop(grace=5).wait()
        coordinator.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def make_server(storage: optuna.storages.BaseStorage, coordinator: Coordinator, host: str, port: int,
                threads: int) -> Any:
    """Optuna's `run_grpc_proxy_server`, unstarted, serving `storage` with the coordination service beside it.

    Optuna's advice is to serve its cached wrapper of the RDB storage; `ProxyBackend` is that
    wrapper, made to survive a restart.

    gRPC lets a second server share a port by default (SO_REUSEPORT) and would split the
    workers between two proxies; a taken port must be an error instead.

    Raises:
        ConfigError: the address cannot be bound.
    """
    server = grpc.server(ThreadPoolExecutor(threads), options=[("grpc.so_reuseport", 0)])
    service, add_to_server = grpc_servicer()
    add_to_server(service(storage), server)
    server.add_generic_rpc_handlers((coordinator.handler(),))
    try:
        bound = server.add_insecure_port(address(host, port))
    except RuntimeError as exc:  # grpcio: "Failed to bind to address"
        bound, reason = 0, str(exc)
    else:
        reason = "bind failed"
    if not bound:
        raise ConfigError(f"storage-proxy: cannot listen on {address(host, port)} ({reason}); is the port taken "
                          "by another process, or the host not an address of this machine?")
    return server
