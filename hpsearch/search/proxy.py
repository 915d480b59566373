"""`hpsearch storage-proxy`: Optuna's gRPC storage proxy, plus the heartbeats and claim lock workers need.

Hundreds of workers that each hold database connections and each re-read the trials table
can exhaust a PostgreSQL server; Optuna's gRPC storage proxy puts one process in front of the
database that all workers talk to (`--storage grpc://HOST:PORT`), and caches trials there.
Optuna's proxy protocol has no heartbeats and no lock, so behind it a dead worker's trial
would stay RUNNING forever and K workers would overshoot the trial count. This module adds a
second, small gRPC service on the same port (JSON messages, no generated code):

- heartbeats and stale-trial queries are answered by the proxy's own RDB storage, so the
  database's clock decides staleness exactly as it does without the proxy;
- the study's claim lock (`hpsearch.search.claim`) is taken by the proxy on a worker's
  behalf, with a lease, so that a worker that dies holding it cannot block the study;
- the heartbeat interval and retry count come from the proxy's study file: one source of
  truth for every worker behind it.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial

from hpsearch.errors import ConfigError
from hpsearch.search.claim import ClaimLock
from hpsearch.search.storage import GRPC_SCHEME, retry_methods, retry_on_disconnect
from hpsearch.search.study import STUDY_NAME, LoadedStudy, make_storage, mask_url
from hpsearch.serving import address, check_bind

try:
    import grpc
    from optuna.storages._grpc.auto_generated.api_pb2_grpc import add_StorageServiceServicer_to_server
    from optuna.storages._grpc.servicer import OptunaStorageProxyService
except ImportError:  # pragma: no cover - the message below says what to install
    grpc = None

_logger = logging.getLogger(__name__)
SERVICE = "hpsearch.Coordination"
DEFAULT_PORT = 13000
LEASE_S = 120.0  # a claim not released by then belongs to a worker that died between claim and trial start
READY_TIMEOUT_S = 5.0
# The storage calls a worker makes through the proxy; each is retried while the proxy restarts.
RETRIED = ("create_new_study", "get_all_studies", "get_study_id_from_name", "get_study_name_from_id",
           "get_study_directions", "get_study_user_attrs", "get_study_system_attrs", "set_study_user_attr",
           "set_study_system_attr", "create_new_trial", "get_trial", "get_all_trials", "set_trial_param",
           "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
           "get_trial_id_from_study_id_trial_number", "record_heartbeat", "_get_stale_trial_ids")


def _require_grpc() -> None:
    if grpc is None:
        raise ConfigError("the storage proxy needs grpcio: pip install 'hpsearch[proxy]' (or grpcio protobuf)")


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _decode(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


def parse_grpc_url(url: str) -> tuple[str, int]:
    """`grpc://HOST:PORT` → (host, port).

    Raises:
        ConfigError: the URL is not of that form.
    """
    host, sep, port = url.removeprefix(GRPC_SCHEME).rpartition(":")
    if not url.startswith(GRPC_SCHEME) or not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"storage {url}: a storage proxy's URL is grpc://HOST:PORT, e.g. grpc://127.0.0.1:13000")
    return host.strip("[]"), int(port)


def _stub(channel: Any, method: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    call = channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=_encode, response_deserializer=_decode)
    return lambda request: dict(call(request))


# ----------------------------------------------------------------------------- server


class Coordinator:
    """The proxy's side of the extra service: settings, heartbeats, stale trials and claims.

    Args:
        rdb: the proxy's RDB storage, with the study's heartbeat settings.
        url: its URL (the claim lock lives in the same database).
        heartbeat_s, max_retry: handed to every worker behind the proxy.
        lease_s: how long a claim may be held before the proxy takes it back.
    """

    def __init__(self, rdb: optuna.storages.RDBStorage, url: str, heartbeat_s: int, max_retry: int,
                 lease_s: float = LEASE_S) -> None:
        self._rdb, self._url, self._lease_s = rdb, url, lease_s
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
        if not STUDY_NAME.match(study):
            raise ValueError(f"not a study name: {study!r}")
        with self._mutex:
            self._expire(study)
            lock = self._locks.setdefault(study, ClaimLock(self._url, study))
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
                                                      request_deserializer=_decode, response_serializer=_encode)
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
    _require_grpc()
    url = loaded.storage_url
    if url.startswith(GRPC_SCHEME):
        raise ConfigError(f"storage-proxy: --storage must be the database (sqlite:///... or "
                          f"postgresql+psycopg2://...), not another proxy; got {url}")
    check_bind("storage proxy", host, port, "can read and change every study in the database")
    rdb = make_storage(loaded)
    assert isinstance(rdb, optuna.storages.RDBStorage)  # not a grpc:// URL, checked above
    coordinator = Coordinator(rdb, url, loaded.cfg.heartbeat_s, loaded.cfg.max_retry)
    server = _make_server(rdb, coordinator, host, port, threads)
    server.start()
    stopped = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    _logger.info("storage proxy for %s listening on %s (heartbeat %d s, stale after %d s); workers use "
                 "--storage grpc://%s; Ctrl-C stops it", mask_url(url), address(host, port), loaded.cfg.heartbeat_s,
                 2 * loaded.cfg.heartbeat_s, address(host, port))
    try:
        stopped.wait()
    finally:
        _logger.info("storage proxy stopping: finishing the requests in flight")
        server.stop(grace=5).wait()
        coordinator.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _make_server(rdb: optuna.storages.RDBStorage, coordinator: Coordinator, host: str, port: int,
                 threads: int) -> Any:
    """Optuna's `run_grpc_proxy_server`, unstarted, with the coordination service beside Optuna's.

    gRPC lets a second server share a port by default (SO_REUSEPORT) and would split the
    workers between two proxies; a taken port must be an error instead.

    Raises:
        ConfigError: the address cannot be bound.
    """
    server = grpc.server(ThreadPoolExecutor(threads), options=[("grpc.so_reuseport", 0)])
    # Optuna's own advice: serve the cached wrapper (`get_storage`), not the bare RDB storage.
    add_StorageServiceServicer_to_server(OptunaStorageProxyService(optuna.storages.get_storage(rdb)), server)
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


# ----------------------------------------------------------------------------- client


class ProxyStorage(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC proxy client, with heartbeats through the proxy (see the module docstring).

    Args:
        url: `grpc://HOST:PORT` of an `hpsearch storage-proxy`.
        heartbeat: record heartbeats and fail stale trials (workers); readers pass False.
        retry: retry the trials of dead workers (`max_retry` from the proxy).

    Raises:
        ConfigError: nothing answers at the URL, or what answers is not an hpsearch storage proxy.
    """

    def __init__(self, url: str, heartbeat: bool = True, retry: bool = True) -> None:
        _require_grpc()
        host, port = parse_grpc_url(url)
        with warnings.catch_warnings():  # Optuna marks its gRPC proxy experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(host=host, port=port)
        try:
            self.wait_server_ready(timeout=READY_TIMEOUT_S)
            settings = self._extra["Settings"]({})
        except ConnectionError as exc:
            raise ConfigError(f"storage {url}: no storage proxy answers within {READY_TIMEOUT_S:g} s; start one "
                              "with `hpsearch storage-proxy STUDY.yaml`") from exc
        except grpc.RpcError as exc:
            raise ConfigError(f"storage {url}: answers, but not as an hpsearch storage proxy ({exc.code().name}); "
                              "start it with `hpsearch storage-proxy` (heartbeats, claim lock)") from exc
        self.heartbeat_s: int | None = settings["heartbeat_s"] if heartbeat else None
        self.max_retry: int | None = settings["max_retry"] if retry else None

    def _setup(self) -> None:  # also run when a pickled storage is restored in another process
        super()._setup()
        self._extra = {name: _stub(self._channel, name) for name in ("Settings", "Heartbeat", "StaleTrials")}

    def record_heartbeat(self, trial_id: int) -> None:
        self._extra["Heartbeat"]({"trial_id": trial_id})

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return list(self._extra["StaleTrials"]({"study_id": study_id})["trial_ids"])

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_s

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        if self.max_retry is None or not self.heartbeat_s:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)


retry_methods(ProxyStorage, RETRIED, " through the storage proxy")


class ProxyClaimLock:
    """The study's claim lock, granted by the storage proxy (same contract as `ClaimLock`)."""

    def __init__(self, url: str, study: str) -> None:
        _require_grpc()
        host, port = parse_grpc_url(url)
        self.study = study
        self._channel = grpc.insecure_channel(address(host, port))
        self._try, self._release = _stub(self._channel, "TryClaim"), _stub(self._channel, "Release")
        self._token: str | None = None

    def acquire(self) -> ProxyClaimLock:
        """Poll until the proxy grants the claim (20 ms at first, backing off to 0.5 s)."""
        delay = 0.02
        try_claim = retry_on_disconnect(self._try, "the study's claim lock through the storage proxy")
        while (token := try_claim({"study": self.study})["token"]) is None:
            time.sleep(delay)
            delay = min(2 * delay, 0.5)
        self._token = token
        return self

    def release(self) -> None:
        """Release (as soon as the worker's trial exists); safe to call twice."""
        if self._token is None:
            return
        token, self._token = self._token, None
        try:
            retry_on_disconnect(self._release, "releasing the claim lock")({"study": self.study, "token": token})
        finally:
            self._channel.close()


def storage_for(url: str, heartbeat_s: int | None, max_retry: int | None) -> BaseStorage:
    """The proxy client for `connect_storage`, warning when the study file's heartbeat differs from the proxy's."""
    storage = ProxyStorage(url, heartbeat=heartbeat_s is not None, retry=max_retry is not None)
    if heartbeat_s is not None and storage.heartbeat_s != heartbeat_s:
        _logger.warning("heartbeat: the storage proxy's %s s applies, not this study file's %s s",
                        storage.heartbeat_s, heartbeat_s)
    return storage
