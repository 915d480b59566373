"""The trial record: what the objective writes reads back typed; studies of the release before it still read."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from hpsearch.config import load_config
from hpsearch.errors import ConfigError
from hpsearch.reports import build_report
from hpsearch.search import load_study_config, open_study, read_trial, read_trials, study_summary
from hpsearch.search.record import SCHEMA_VERSION, TrialWriter

DATA = Path(__file__).parent / "data"


def _v1_study(tmp_path: Path) -> Path:
    """The study database a release before the trial record wrote (3 trials on digits, dumped as SQL)."""
    with sqlite3.connect(tmp_path / "study.db") as db:
        db.executescript((DATA / "study_v1.sql").read_text(encoding="utf-8"))
    shutil.copy(DATA / "space_v1.yaml", tmp_path / "space_v1.yaml")
    raw = yaml.safe_load((DATA / "study_v1.yaml").read_text(encoding="utf-8"))
    raw.update(storage=f"sqlite:///{tmp_path / 'study.db'}", artifacts=str(tmp_path / "artifacts"),
               runs_dir=str(tmp_path / "trials"))
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_study_written_before_the_trial_record_reads(tmp_path: Path) -> None:
    loaded = load_study_config(_v1_study(tmp_path))
    trials = read_trials(open_study(loaded))
    assert [(t.number, t.state, t.version) for t in trials] == [
        (0, TrialState.COMPLETE, 1), (1, TrialState.COMPLETE, 1), (2, TrialState.PRUNED, 1)]
    best = trials[0]
    assert best.config is not None and best.config["model"]["g_cond"] == "cbn_linear" and best.family == "dcgan"
    assert best.objective == "class_fid" and best.steps == 60 and best.seed == 0 and best.device == "cpu"
    assert [e["step"] for e in best.evals] == [20, 40, 60] and best.progress_step == 60
    assert best.objective_value == best.value == min(e["class_fid"] for e in best.evals)
    assert best.best_eval("class_fid")["class_fid"] == best.value
    assert sorted(best.grids) == [20, 40, 60] and best.latest_grid() == best.grids[60]
    assert best.checkpoint_artifact and best.run_dir == "trials/trial_00000"
    assert best.wall_s is not None and best.wall_s > 0 and best.failure is None
    assert trials[2].last_step == 20 and math.isfinite(trials[2].objective_value)

    summary = study_summary(loaded)
    assert "3 trials: 2 complete, 1 pruned" in summary and f"best: trial 0 = {best.value:.4g}" in summary
    report = build_report(loaded, tmp_path / "report", png=False)  # its grids and checkpoints are not here
    assert list(report.table.index) == [0, 1, 2] and report.table.loc[0, "objective"] == best.value
    assert any("sample grid" in note for note in report.notes)


def test_a_record_from_a_newer_release_is_refused_with_one_line(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    trial.set_user_attr("record_version", SCHEMA_VERSION + 1)
    with pytest.raises(ConfigError, match=r"trial 0: stored with trial record version \d+ by a newer hpsearch"):
        read_trial(study.get_trials()[0])


def test_what_the_writer_stores_the_reader_returns(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    writer = TrialWriter(trial)
    cfg = load_config(None, ["model.generator=sagan", "model.g_attention=16", "train.seed=7", "train.steps=300"])
    writer.start(cfg, "runs/t/trial_00000", "cuda", "fid")
    writer.evaluation(100, {"fid": 3.0, "loss_d": 1.0})
    writer.grid(100, "a1")
    writer.evaluation(200, {"fid": 2.0, "loss_d": 0.5})
    writer.grid(200, "a2")
    writer.failure("diverged")
    writer.timing(12.5, 0.5)
    writer.checkpoint("c1")
    trial.report(2.0, 200)
    record = read_trial(study.get_trials()[0])
    assert (record.version, record.family, record.seed, record.steps, record.objective, record.device) == (
        SCHEMA_VERSION, "sagan", 7, 300, "fid", "cuda")
    assert record.evals == [{"fid": 3.0, "loss_d": 1.0, "step": 100}, {"fid": 2.0, "loss_d": 0.5, "step": 200}]
    assert record.grids == {100: "a1", 200: "a2"} and record.latest_grid() == "a2" and record.progress_step == 200
    assert (record.failure, record.wall_s, record.storage_s) == ("diverged", 12.5, 0.5)
    assert record.checkpoint_artifact == "c1"
    assert record.config == cfg.to_dict() and record.intermediate == {200: 2.0} and not record.finished


def test_malformed_stored_attributes_read_as_absent(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    for key, value in {"config": "not a mapping", "evals": [1, {"fid": 2.0}], "grids": {"x": "a", "5": 3, "7": "b"},
                       "wall_s": "slow", "steps": True, "run_dir": 5}.items():
        trial.set_user_attr(key, value)
    record = read_trial(study.get_trials()[0])
    assert record.config is None and record.evals == [{"fid": 2.0}] and record.grids == {7: "b"}
    assert record.wall_s is None and record.steps is None and record.run_dir is None and record.family == "dcgan"
