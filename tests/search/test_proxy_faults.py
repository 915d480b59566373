"""The storage proxy's two faults, made deterministic: a restart between a trial's creation and its first
parameter write, and a proxy that dies after the database committed a new trial but before it replied."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial

from hpsearch.search.backend import open_backend, storage_kind
from hpsearch.search.optuna_private import CachedStorage
from hpsearch.search.proxy_client import ProxyStorage
from hpsearch.search.proxy_server import Coordinator, ProxyBackend, make_server
from hpsearch.search.storage import CREATE_TOKEN, retry_on_disconnect
from hpsearch.search.storage_url import StorageURL
from tests.search.helpers import free_port

grpc = pytest.importorskip("grpc")


@contextmanager
def _proxy(url: str, port: int, backend: type[CachedStorage] = ProxyBackend) -> Iterator[Any]:
    """A storage proxy served in this process (as `hpsearch storage-proxy` serves it); yields the served storage."""
    rdb = open_backend(url, heartbeat_s=30, max_retry=2).storage
    assert isinstance(rdb, optuna.storages.RDBStorage)
    served = backend(rdb)
    coordinator = Coordinator(rdb, storage_kind(url), 30, 2)  # type: ignore[arg-type]
    server = make_server(served, coordinator, "127.0.0.1", port, 8)
    server.start()
    try:
        yield served, server
    finally:
        server.stop(None).wait()
        coordinator.close()


def _client(port: int) -> ProxyStorage:
    return ProxyStorage(StorageURL.parse(f"grpc://127.0.0.1:{port}"))


def _write_param_after_restart(tmp_path: Path, backend: type[CachedStorage]) -> FrozenTrial:
    url, port = f"sqlite:///{tmp_path / 'study.db'}", free_port()
    with _proxy(url, port):
        client = _client(port)
        study = optuna.create_study(study_name="s", storage=client)
        trial_id = client.create_new_trial(study._study_id)
    with _proxy(url, port, backend):  # a new proxy process: it has read nothing yet
        client.set_trial_param(trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        return client.get_trial(trial_id)


def test_a_restarted_proxy_answers_for_a_trial_created_before_it(tmp_path: Path) -> None:
    assert _write_param_after_restart(tmp_path, ProxyBackend).params == {"x": 0.5}


def test_optunas_cached_storage_alone_loses_such_a_trial(tmp_path: Path) -> None:
    """The root cause, kept visible: Optuna's wrapper answers NOT_FOUND (KeyError) for a trial it has not read."""
    with pytest.raises(KeyError):
        _write_param_after_restart(tmp_path, CachedStorage)


def _dies_after_commit() -> type[ProxyBackend]:
    """A proxy backend that commits a new trial, then hangs until the test has stopped the server."""

    class DiesAfterCommit(ProxyBackend):
        committed = threading.Event()
        killed = threading.Event()

        def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
            trial_id = super().create_new_trial(study_id, template_trial)
            self.committed.set()
            self.killed.wait(30)  # the reply never leaves: the server is gone by then
            return trial_id

    return DiesAfterCommit


# How the proxy dies mid-call: at once, or stopped gracefully with the call still running when the grace
# period ends, as `hpsearch storage-proxy` stops on SIGTERM. gRPC reports either as UNAVAILABLE or CANCELLED,
# depending on timing; `test_a_call_cut_by_a_proxy_going_away_is_retried` covers both codes.
@pytest.mark.parametrize("grace", [None, 0.3], ids=["killed", "grace-expired"])
def test_a_trial_committed_before_the_proxy_died_is_not_created_twice(tmp_path: Path, grace: float | None,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    url, port = f"sqlite:///{tmp_path / 'study.db'}", free_port()
    result: dict[str, Any] = {}
    caplog.set_level(logging.WARNING)
    backend = _dies_after_commit()
    with _proxy(url, port, backend) as (_, server):
        client = _client(port)
        study_id = optuna.create_study(study_name="s", storage=client)._study_id
        call = threading.Thread(target=lambda: result.update(trial_id=client.create_new_trial(study_id)))
        call.start()
        assert backend.committed.wait(30), "the proxy never reached the commit"  # type: ignore[attr-defined]
        server.stop(grace).wait()  # gone between the commit and the reply
        backend.killed.set()  # type: ignore[attr-defined]
    with _proxy(url, port):  # the proxy comes back; the client's retry finds the trial it made
        call.join(120)
        assert not call.is_alive()
        trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert len(trials) == 1 and result["trial_id"] == trials[0]._trial_id
    assert trials[0].system_attrs[CREATE_TOKEN]
    assert "had been created before the connection was lost" in caplog.text  # the retry found it, made none


def test_each_creation_through_the_proxy_makes_one_marked_trial(tmp_path: Path) -> None:
    url, port = f"sqlite:///{tmp_path / 'study.db'}", free_port()
    with _proxy(url, port):
        study = optuna.create_study(study_name="s", storage=_client(port))
        study.enqueue_trial({"x": 0.25})
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        trials = study.get_trials()
    assert [t.params["x"] for t in trials][:1] == [0.25] and len(trials) == 3
    assert len({t.system_attrs.get(CREATE_TOKEN) for t in trials[1:]}) == 2  # enqueued trials are not re-created


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


@pytest.mark.parametrize("code", ["UNAVAILABLE", "CANCELLED"])
def test_a_call_cut_by_a_proxy_going_away_is_retried(code: str) -> None:
    """CANCELLED is what a worker got in 1 of 9 proxy-restart runs: a call in flight when the old proxy stopped."""
    calls: list[int] = []

    def cut_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise _RpcError(getattr(grpc.StatusCode, code))
        return "done"

    assert retry_on_disconnect(cut_once, "a proxy call", delays=(0.01,))() == "done" and len(calls) == 2


@pytest.mark.parametrize("code", ["NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "UNKNOWN"])
def test_other_proxy_answers_are_not_retried(code: str) -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise _RpcError(getattr(grpc.StatusCode, code))

    with pytest.raises(grpc.RpcError):
        retry_on_disconnect(refused, "a proxy call", delays=(0.01,))()
    assert len(calls) == 1
