"""`hpsearch confirm`: the leaders trained again with fresh seeds, measured independently, never twice."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.cli import main
from hpsearch.reports import build_report
from hpsearch.search import load_study_config
from hpsearch.search.confirm import choose_sources, run_seeds
from hpsearch.search.record import TrialRecord
from tests.search.helpers import GOOD, write_study

CPU = ["--device", "cpu"]


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "search-data"  # shared: the classifier trains once


def test_confirm_trains_fresh_seeds_measures_independently_and_resumes_without_duplicates(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, enqueue=[GOOD, {**GOOD, "d_cond": "acgan"}, {**GOOD, "g_cond": "concat"}],
                       stop={"n_trials": 3}, pruner={"name": "none"})
    assert main(["run", str(path), "--data-dir", str(data_dir), *CPU]) == 0
    args = ["confirm", str(path), "--top", "2", "--per", "d_cond", "--seeds", "2", "--samples", "200",
            "--data-dir", str(data_dir), *CPU]
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = {t.number: t for t in optuna.load_study(study_name="tiny", storage=storage).get_trials()}
    runs = optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()  # plain Optuna reads it
    ranked = sorted((t for t in search.values() if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    chosen = {t.number for t in ranked[:2]} | {next(t for t in ranked if t.params["d_cond"] == d).number
                                                for d in ("projection", "acgan")}
    assert sorted((r.params["source"], r.params["seed_index"]) for r in runs) == sorted(
        (n, i) for n in chosen for i in range(2))
    for run in runs:
        attrs, source = run.user_attrs, search[run.params["source"]]
        assert run.state == TrialState.COMPLETE and math.isfinite(run.value)
        assert attrs["config"]["model"] == source.user_attrs["config"]["model"]  # the same configuration
        assert (attrs["train_seed"], attrs["eval_seed"]) == run_seeds(0, attrs["seed_index"])  # the base seed: paired
        assert attrs["train_seed"] != source.user_attrs["seed"] and attrs["eval_seed"] != attrs["train_seed"]
        assert attrs["config"]["train"]["seed"] == attrs["train_seed"] and attrs["samples"] == 200
        assert math.isfinite(attrs["best_value"]) and attrs["best_artifact"]
        measured = attrs["measured"]  # the independent measurement, every metric, collapse flag included
        assert measured["class_fid"] == run.value and measured["collapse"] is False
        assert 0 < measured["msssim_real"] < 1
    n = 2 * len(chosen)
    assert f"confirmed ({n} of {n} runs complete, measured on 200 independent samples each):" in out
    assert "(95% CI, 2 seeds)" in out and "the lowest mean" in out
    assert "effect of d_cond (confirmed runs grouped by its value):" in out and "d_cond=acgan: class_fid" in out
    report = build_report(load_study_config(path), tmp_path / "report", png=False)  # opens with the findings
    assert report.findings is not None and len(report.findings.ranking) == len(chosen)
    assert sum(len(tr.x) for tr in report.figures["findings"].data) == len(chosen)
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.index("<h2>Findings</h2>") < page.index('id="parallel"') and report.findings.sentences()[0] in page
    assert (tmp_path / "report" / "grids" / f"trial_{report.findings.winner.number:05d}.png").is_file()

    assert main(args) == 0  # a second confirm: every run exists already
    assert len(optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()) == n
    capsys.readouterr()
    assert main([*args, "--samples", "300"]) == 2  # the runs must stay comparable
    assert "error: --samples: this study's confirmation runs were measured with 200" in capsys.readouterr().err
    assert main([*args, "--per", "nope"]) == 2
    assert "error: --per 'nope': no completed trial has this parameter" in capsys.readouterr().err
    assert main([*args, "--per", "z_dim"]) == 2  # a range: one "configuration" per drawn number (issue 24)
    assert "error: --per 'z_dim': an integer range, not a choice" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()) == n


def _record(number: int, value: float, **params: object) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.COMPLETE, value=value, params=dict(params), config={})


def test_choose_sources_takes_the_top_then_the_best_of_each_choice() -> None:
    trials = [_record(0, 5.0, g="cbn", d="proj"), _record(1, 4.0, g="cbn", d="concat"),
              _record(2, 6.0, g="concat", d="proj"), _record(3, 9.0, g="concat", d="concat"),
              TrialRecord(number=4, state=TrialState.PRUNED, intermediate={20: 1.0}, params={"g": "hidden"})]
    assert [t.number for t in choose_sources(trials, 1, [])] == [1]
    assert [t.number for t in choose_sources(trials, 1, ["g"])] == [1, 2]  # pruned trials are never confirmed
    assert [t.number for t in choose_sources(trials, 2, ["g", "d"])] == [1, 0, 2]
    again = [*trials, _record(5, 4.5, g="cbn", d="concat")]  # trial 1's configuration, drawn again
    assert [t.number for t in choose_sources(again, 2, [])] == [1, 0]


@pytest.mark.slow
def test_confirmation_runs_go_to_worker_processes_and_finish_exactly_the_plan(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, enqueue=[GOOD], stop={"n_trials": 1}, pruner={"name": "none"})
    assert main(["run", str(path), "--data-dir", str(data_dir), *CPU]) == 0
    assert main(["confirm", str(path), "--top", "1", "--seeds", "3", "--workers", "2", "--data-dir",
                 str(data_dir)]) == 0
    runs = optuna.load_study(study_name="tiny.confirm", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    assert sorted(r.params["seed_index"] for r in runs) == [0, 1, 2]  # two workers, three runs, none twice
    assert all(r.state == TrialState.COMPLETE for r in runs)
    assert "confirmed (3 of 3 runs complete" in capsys.readouterr().out
