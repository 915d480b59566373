"""A trial keeps the generator of its best evaluation: its value is that generator's, export hands it out."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from torch import nn

import hpsearch.runner
from hpsearch.cli import main
from hpsearch.generation import load_generator
from hpsearch.metrics import Evaluator
from hpsearch.reports import build_report
from hpsearch.search import load_study_config
from tests.search.helpers import GOOD, write_study

CPU = ["--device", "cpu"]


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "search-data"  # shared: the classifier trains once


def _one_trial(tmp_path: Path, data_dir: Path, objective: str) -> optuna.trial.FrozenTrial:
    path = write_study(tmp_path, objective=objective, enqueue=[GOOD], stop={"n_trials": 1}, pruner={"name": "none"})
    assert main(["run", str(path), "--data-dir", str(data_dir), *CPU]) == 0
    (trial,) = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    assert main(["export", str(path), "--trial", "0", "--out", str(tmp_path / "exported")]) == 0
    return trial


def _eval(checkpoint: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["eval", str(checkpoint), "--data-dir", str(data_dir), *CPU]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_a_trial_whose_objective_rises_late_exports_its_earlier_best(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """FID scripted to fall then rise (5, 3, 4 at steps 20, 40, 60); the other metrics are measured."""
    scripted = {20: 5.0, 40: 3.0, 60: 4.0}

    class RisesLate(Evaluator):
        def __call__(self, step: int, generator: nn.Module,
                     record: Mapping[str, Any] | None = None) -> dict[str, float]:
            return {**super().__call__(step, generator, record), "fid": scripted[step]}

    monkeypatch.setattr(hpsearch.runner, "Evaluator", RisesLate)
    trial = _one_trial(tmp_path, data_dir, "fid")
    assert trial.value == 3.0 and trial.user_attrs["best_step"] == 40
    exported = tmp_path / "exported" / "checkpoint.pt"
    assert load_generator(exported, torch.device("cpu")).step == 40  # not the last step, 60
    at_40 = next(e for e in trial.user_attrs["evals"] if e["step"] == 40)
    monkeypatch.undo()  # the real evaluator: the kept generator scores what the trial measured at step 40
    measured = _eval(exported, data_dir, capsys)
    assert measured["step"] == 40 and measured["class_fid"] == at_40["class_fid"]


@pytest.mark.parametrize("objective", ["class_fid", "class_kid"])
def test_eval_of_the_exported_best_reproduces_the_trials_value_exactly(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], objective: str) -> None:
    trial = _one_trial(tmp_path, data_dir, objective)
    evals = trial.user_attrs["evals"]
    assert trial.intermediate_values == {e["step"]: e[objective] for e in evals}  # what the pruner reads
    assert trial.value == min(e[objective] for e in evals)
    measured = _eval(tmp_path / "exported" / "checkpoint.pt", data_dir, capsys)
    assert measured[objective] == trial.value and measured["step"] == trial.user_attrs["best_step"]
    run = tmp_path / "trials" / "trial_00000"
    assert _eval(run, data_dir, capsys)[objective] == trial.value  # a run folder means its best generator
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "exported"), "--no-ema", "--out", str(tmp_path / "s.png"), *CPU]) == 0


def test_report_and_export_find_the_artifacts_from_another_folder(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative `artifacts` and `runs_dir` are where the workers ran; readers elsewhere still find them."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    path = write_study(tmp_path, enqueue=[GOOD], stop={"n_trials": 1}, artifacts="artifacts", runs_dir="trials")
    monkeypatch.chdir(here)
    assert main(["run", str(path), "--data-dir", str(data_dir), *CPU]) == 0
    assert (here / "artifacts").is_dir()
    monkeypatch.chdir(elsewhere)
    shutil.rmtree(here / "trials")  # only the artifact store is left to export from
    report = build_report(load_study_config(path), elsewhere / "report", png=False)
    assert not [n for n in report.notes if "grid" in n] and (elsewhere / "report" / "grids").is_dir()
    assert main(["export", str(path), "--out", str(elsewhere / "best")]) == 0
    assert load_generator(elsewhere / "best", torch.device("cpu")).step > 0
