"""`hpsearch dashboard`: bad input is one line and exit 2; binding beyond localhost warns.

The served dashboard itself is tested in a real browser in tests/reports/test_browser.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna_dashboard
import pytest

from hpsearch.cli import main
from hpsearch.search import load_study_config, open_study
from tests.search.helpers import write_study


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = write_study(tmp_path)
    open_study(load_study_config(path), create=True)
    (tmp_path / "artifacts").mkdir()
    return path


@pytest.mark.parametrize(("args", "message"), [
    ([], "give a study YAML or --storage URL"),
    (["--storage", "sqlite:///{tmp}/absent.db"], "no such SQLite file"),
    (["{study}", "--artifacts", "{tmp}/nowhere"], "--artifacts {tmp}/nowhere: no such folder"),
    (["{study}", "--port", "70000"], "--port: must be in 1..65535"),
    (["--storage", "postgresql+psycopg2://u:hunter2@127.0.0.1:1/x"], "u:***@127.0.0.1:1/x: cannot be opened"),
])
def test_bad_dashboard_input_exit_2(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    args: list[str], message: str) -> None:
    args = [a.format(tmp=tmp_path, study=study) for a in args]
    assert main(["dashboard", *args]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "hunter2" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "absent.db").exists()


def test_dashboard_uses_the_study_storage_and_artifacts_and_warns_off_localhost(
        study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    served: dict[str, object] = {}

    def fake_run_server(storage: object, host: str, port: int, artifact_store: object) -> None:
        served.update(storage=storage, host=host, port=port, store=artifact_store)

    monkeypatch.setattr(optuna_dashboard, "run_server", fake_run_server)
    with caplog.at_level(logging.WARNING):
        assert main(["dashboard", str(study), "--port", "8099"]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 8099
    assert Path(served["store"]._base_path) == tmp_path / "artifacts"  # noqa: SLF001
    assert [s.study_name for s in served["storage"].get_all_studies()] == ["tiny"]  # type: ignore[attr-defined]
    assert "bound to" not in caplog.text
    assert main(["dashboard", str(study), "--host", "0.0.0.0"]) == 0
    assert "bound to 0.0.0.0" in caplog.text and "no authentication" in caplog.text
