"""A trial whose creation committed just before the database connection dropped is not created twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from hpsearch.search.backend import open_backend
from hpsearch.search.storage import CREATE_TOKEN
from hpsearch.search.study import snapshot


def _drop_after_first_commit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """RDBStorage._create_new_trial commits, then (once) the connection is reported lost."""
    original = optuna.storages.RDBStorage._create_new_trial
    calls: list[int] = []

    def committed_then_dropped(self: Any, study_id: int, template: Any = None) -> Any:
        trial = original(self, study_id, template)
        calls.append(trial._trial_id)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"),
                                                  connection_invalidated=True)
        return trial

    monkeypatch.setattr(optuna.storages.RDBStorage, "_create_new_trial", committed_then_dropped)
    return calls


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_retried_creation_finds_the_committed_trial(tmp_path: Path, database: str, request: pytest.FixtureRequest,
                                                      study_name: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    storage = open_backend(url, heartbeat_s=30, max_retry=1).storage
    study = optuna.create_study(study_name=study_name, storage=storage)
    calls = _drop_after_first_commit(monkeypatch=request.getfixturevalue("monkeypatch"))
    trial = study.ask()
    trials = study.get_trials()
    assert len(calls) == 1 and len(trials) == 1 and trials[0].number == trial.number
    assert trials[0].system_attrs[CREATE_TOKEN] and "had been created before the connection was lost" in caplog.text


def test_a_snapshot_is_one_moment_of_the_study() -> None:
    """Issue 24: a report read the trials piece by piece while a worker wrote ("1 finished trial" beside an
    importance note counting 2); it now reads one in-memory copy, running and waiting trials included."""
    study = optuna.create_study()
    study.set_user_attr("artifacts_dir", "/x")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.ask()  # a running trial
    study.enqueue_trial({"x": 0.5})  # a waiting one
    copy = snapshot(study)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # a worker goes on writing
    assert [t.state for t in copy.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING,
                                              TrialState.WAITING]
    assert copy.user_attrs == {"artifacts_dir": "/x"} and study.trials[3].state == TrialState.COMPLETE
