"""The worker's side of `hpsearch storage-proxy`: Optuna's gRPC client with heartbeats, claims and safe retries.

The wire protocol of the extra service (`SERVICE`, JSON messages, no generated code) is
defined here and served by `hpsearch.search.proxy_server`. Every call is retried while the
proxy restarts. Creating a trial is the one call that is not safe to repeat blindly: a
proxy that dies after the database committed the trial but before it replied would make a
blind retry create a second trial. So each creation carries a token (a system attribute
written in the same transaction as the trial), and a retry first asks whether a trial with
that token exists (`hpsearch.search.storage.create_once`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import GrpcStorageProxy
from optuna.trial import FrozenTrial

from hpsearch.errors import ConfigError
from hpsearch.search.optuna_private import BaseHeartbeat
from hpsearch.search.storage import create_once, find_created, retry_methods, retry_on_disconnect
from hpsearch.search.storage_url import StorageURL
from hpsearch.serving import address

# gRPC's C core logs to stderr on its own (a failed bind prints an "E1203 ... add_port.cc" line before
# the error hpsearch reports); its errors reach hpsearch as exceptions, so it stays quiet unless asked.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

try:
    import grpc
except ImportError:  # pragma: no cover - the message below says what to install
    grpc = None

_logger = logging.getLogger(__name__)
SERVICE = "hpsearch.Coordination"
READY_TIMEOUT_S = 5.0
# The storage calls a worker makes through the proxy; each is retried while the proxy restarts.
# (create_new_trial has its own retry, by token: see the module docstring.)
RETRIED = ("create_new_study", "get_all_studies", "get_study_id_from_name", "get_study_name_from_id",
           "get_study_directions", "get_study_user_attrs", "get_study_system_attrs", "set_study_user_attr",
           "set_study_system_attr", "get_trial", "get_all_trials", "set_trial_param",
           "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
           "get_trial_id_from_study_id_trial_number", "record_heartbeat", "_get_stale_trial_ids")


def require_grpc() -> None:
    if grpc is None:
        raise ConfigError("the storage proxy needs grpcio: pip install 'hpsearch[proxy]' (or grpcio protobuf)")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def decode(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


def _stub(channel: Any, method: str, timeout_s: float | None = None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    call = channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=encode, response_deserializer=decode)
    return lambda request: dict(call(request, timeout=timeout_s))


class ProxyStorage(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC proxy client, with heartbeats through the proxy and idempotent trial creation.

    Args:
        url: `grpc://HOST:PORT` of an `hpsearch storage-proxy`.
        heartbeat: record heartbeats and fail stale trials (workers); readers pass False.
        retry: retry the trials of dead workers (`max_retry` from the proxy).

    Raises:
        ConfigError: nothing answers at the URL, or what answers is not an hpsearch storage proxy.
    """

    def __init__(self, url: StorageURL, heartbeat: bool = True, retry: bool = True) -> None:
        require_grpc()
        assert url.host is not None and url.port is not None  # a grpc:// URL always has both
        with warnings.catch_warnings():  # Optuna marks its gRPC proxy experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(host=url.host, port=url.port)
        try:
            self.wait_server_ready(timeout=READY_TIMEOUT_S)
            # The first call has a deadline: a peer that accepts the connection and never answers would hang here.
            settings = _stub(self._channel, "Settings", READY_TIMEOUT_S)({})
        except ConnectionError as exc:
            raise ConfigError(f"storage {url.masked}: no storage proxy answers within {READY_TIMEOUT_S:g} s; "
                              "start one with `hpsearch storage-proxy STUDY.yaml`") from exc
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ConfigError(f"storage {url.masked}: accepts connections but does not answer within "
                                  f"{READY_TIMEOUT_S:g} s; is it an hpsearch storage proxy?") from exc
            raise ConfigError(f"storage {url.masked}: answers, but not as an hpsearch storage proxy "
                              f"({exc.code().name}); start it with `hpsearch storage-proxy` (heartbeats, claim "
                              "lock)") from exc
        self.heartbeat_s: int | None = settings["heartbeat_s"] if heartbeat else None
        self.max_retry: int | None = settings["max_retry"] if retry else None

    def _setup(self) -> None:  # also run when a pickled storage is restored in another process
        super()._setup()
        self._extra = {name: _stub(self._channel, name) for name in ("Settings", "Heartbeat", "StaleTrials")}

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """Create a trial once, however often the call must be repeated (see the module docstring)."""
        create = GrpcStorageProxy.create_new_trial

        def find(token: str) -> int | None:
            trial = find_created(GrpcStorageProxy.get_all_trials(self, study_id, deepcopy=False), token)
            return None if trial is None else trial._trial_id

        return create_once(lambda template: create(self, study_id, template), find, template_trial,
                           "create_new_trial through the storage proxy")

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

    def __init__(self, url: StorageURL, study: str) -> None:
        require_grpc()
        assert url.host is not None and url.port is not None  # a grpc:// URL always has both
        self.study = study
        self._channel = grpc.insecure_channel(address(url.host, url.port))
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


def open_proxy_storage(url: StorageURL, heartbeat_s: int | None, max_retry: int | None) -> ProxyStorage:
    """The proxy client, warning when the study file's heartbeat differs from the proxy's (the proxy's applies)."""
    storage = ProxyStorage(url, heartbeat=heartbeat_s is not None, retry=max_retry is not None)
    if heartbeat_s is not None and storage.heartbeat_s != heartbeat_s:
        _logger.warning("heartbeat: the storage proxy's %s s applies, not this study file's %s s",
                        storage.heartbeat_s, heartbeat_s)
    return storage
