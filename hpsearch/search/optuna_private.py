"""Every private Optuna symbol hpsearch relies on, in one place, checked against the installed Optuna.

Optuna keeps no promise about names that start with `_`. hpsearch uses a few of them where
Optuna offers no public way (the storage proxy's servicer, the heartbeat base class, the RDB
storage's internal calls that its caching wrapper makes). They are named here and nowhere
else, and `missing()` says which have disappeared, so an Optuna upgrade fails one test with
a clear message instead of a worker at run time. `pyproject.toml` pins Optuna to the range
that is tested (`>=5.0,<6`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from optuna.storages._cached_storage import _CachedStorage as CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat

__all__ = ["BaseHeartbeat", "CachedStorage", "OPTIMIZE_LOGGER", "grpc_servicer", "missing"]

# (module, attribute): the module-level private symbols imported by hpsearch.
MODULE_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("optuna.storages._heartbeat", "BaseHeartbeat"),  # the proxy client records heartbeats through it
    ("optuna.storages._cached_storage", "_CachedStorage"),  # the proxy serves it (Optuna's advice), extended
    ("optuna.storages._grpc.servicer", "OptunaStorageProxyService"),  # the proxy's Optuna service
    ("optuna.storages._grpc.auto_generated.api_pb2_grpc", "add_StorageServiceServicer_to_server"),
)
# The RDB storage's private calls that Optuna's caching wrapper and heartbeat code make:
# hpsearch wraps them in its retry on a lost connection.
RDB_PRIVATE_METHODS = ("_get_trials", "_create_new_trial", "_get_best_trial_id", "_set_trial_param",
                       "_get_stale_trial_ids")
# Private methods of public classes that hpsearch calls, wraps in retries or overrides.
METHODS: tuple[tuple[str, str], ...] = (
    *(("optuna.storages.RDBStorage", name) for name in RDB_PRIVATE_METHODS),
    ("optuna.storages.GrpcStorageProxy", "_setup"),  # builds `_channel`; the proxy client adds its stubs on it
    ("optuna.artifacts.FileSystemArtifactStore", "_get_filepath"),  # the atomic artifact store writes there
)
# Optuna's logger that logs a failed trial with its traceback (hpsearch drops the traceback of its own errors).
OPTIMIZE_LOGGER = "optuna.study._optimize"


def grpc_servicer() -> tuple[Any, Any]:
    """Optuna's proxy service class and the function that adds it to a gRPC server (grpcio is optional)."""
    from optuna.storages._grpc.auto_generated.api_pb2_grpc import add_StorageServiceServicer_to_server
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    return OptunaStorageProxyService, add_StorageServiceServicer_to_server


def _resolve(dotted: str) -> Any:
    """`pkg.mod.Class` → the object (the longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def _trial_has_id() -> bool:
    import optuna

    return hasattr(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=0.0), "_trial_id")


def _proxy_has_channel() -> bool:
    import inspect

    import optuna

    return "self._channel" in inspect.getsource(optuna.storages.GrpcStorageProxy._setup)


# Private attributes of Optuna objects, each with how to tell it is there: a trial's database id (the proxy
# client finds the trial it created by it), and the gRPC client's channel (set by `_setup`).
ATTRIBUTES: dict[str, Callable[[], bool]] = {"FrozenTrial._trial_id": _trial_has_id,
                                             "GrpcStorageProxy._channel": _proxy_has_channel}


def _attributes_missing() -> list[str]:
    return [name for name, present in ATTRIBUTES.items() if not present()]


def missing() -> list[str]:
    """The private symbols above that the installed Optuna no longer has (empty when all are there)."""
    gone = _attributes_missing()
    for owner, name in (*MODULE_SYMBOLS, *METHODS, ("optuna.study", "_optimize")):
        try:
            if not hasattr(_resolve(owner), name):
                gone.append(f"{owner}.{name}")
        except (ImportError, AttributeError):
            gone.append(f"{owner}.{name}")
    return gone
