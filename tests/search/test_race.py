"""`hpsearch confirm --race`: rounds planned in the companion study, advanced by whichever worker finds one
complete, stopped for a stated reason, resumed after a kill without repeating a run."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.cli import _race_settings, build_parser, main
from hpsearch.errors import ConfigError
from hpsearch.racing import RaceSettings, replay
from hpsearch.search import load_study_config
from hpsearch.search.confirm import (
    Race,
    advance_race,
    check_confirmation,
    has_work,
    next_run,
    open_companion,
    plan_confirmation,
    race_runs,
    run_seeds,
)
from hpsearch.search.record import TrialRecord
from hpsearch.search.study import study_backend
from hpsearch.search.worker import work_loop
from tests.search.helpers import GOOD, ROOT, worker, write_study

CPU = ["--device", "cpu"]


def _source(number: int) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.COMPLETE, value=1.0, params={}, config={})


class _TableObjective:
    """Stands in for training: run (source, seed index) returns its value from a table, and counts its calls."""

    def __init__(self, values: dict[int, list[float]]) -> None:
        self.values, self.calls = values, Counter[tuple[int, int]]()
        self.on_start, self.current = (lambda: None), None

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        key = (trial.suggest_int("source", 0, 10_000_000), trial.suggest_int("seed_index", 0, 10_000))
        self.calls[key] += 1
        return self.values[key[0]][key[1]]


def _race(tmp_path: Path, values: dict[int, list[float]], settings: RaceSettings) -> tuple[optuna.Study, Counter]:
    loaded = load_study_config(write_study(tmp_path))
    backend = study_backend(loaded)
    plan_confirmation(loaded, [_source(n) for n in values], settings.first, 100, backend, race=settings)
    companion = open_companion(loaded, backend)
    objective = _TableObjective(values)
    work_loop(companion, backend, objective, next_run)
    return companion, objective.calls


def test_a_race_runs_round_by_round_in_the_companion_and_drops_the_clear_loser(tmp_path: Path) -> None:
    values = {3: [7.0, 7.4, 6.9, 7.2, 7.1], 5: [7.1, 7.3, 7.0, 7.3, 7.0], 8: [30.0, 31.0, 29.0, 30.5, 30.2]}
    companion, calls = _race(tmp_path, values, RaceSettings(first=3, max_seeds=5, paired=False))
    assert max(calls.values()) == 1  # no run twice
    assert {k for k in calls if k[0] == 8} == {(8, 0), (8, 1), (8, 2)}  # dropped after the first round
    assert {k for k in calls if k[0] != 8} == {(s, i) for s in (3, 5) for i in range(5)}
    state = advance_race(companion)
    assert state.stop == "budget" and state.survivors == [3, 5] and state.spent == 13
    assert Race(RaceSettings(first=3, max_seeds=5, paired=False), state).sentence({3: "trial 3"}) == (
        "race (Welch t tests, 95% confidence of keeping the best, 13 runs): budget spent: trial 3 and trial 5 not "
        f"separated (5 seeds each); dropped: trial 8 after 3 seeds (worse than trial 3, p = {state.dropped[8].p:.2g})")


def test_a_race_of_one_survivor_is_separated_and_plans_nothing_more(tmp_path: Path) -> None:
    values = {0: [7.0, 7.2, 6.9], 1: [30.0, 31.0, 29.0], 2: [40.0, 41.0, 39.5]}
    companion, calls = _race(tmp_path, values, RaceSettings(first=3, paired=False))
    assert sum(calls.values()) == 9 and advance_race(companion).stop == "separated"
    assert len(companion.get_trials()) == 9


def test_a_race_resumes_from_the_runs_that_exist(tmp_path: Path) -> None:
    """Half a round done, then a fresh worker: it runs only what is missing."""
    values = {0: [7.0, 7.4, 6.9, 7.2], 1: [7.1, 7.3, 7.0, 7.3]}
    settings = RaceSettings(first=2, max_seeds=4)
    loaded = load_study_config(write_study(tmp_path))
    backend = study_backend(loaded)
    plan_confirmation(loaded, [_source(0), _source(1)], 2, 100, backend, race=settings)
    companion = open_companion(loaded, backend)
    first = _TableObjective(values)
    work_loop(companion, backend, first, next_run, timeout=0.0)  # no time: nothing runs
    companion.optimize(first, n_trials=2)  # two runs of the first round, then a "kill"
    second = _TableObjective(values)
    work_loop(companion, backend, second, next_run)
    assert not set(first.calls) & set(second.calls) and len(first.calls) + len(second.calls) == 8
    assert advance_race(companion).stop == "budget"
    plan_confirmation(loaded, [_source(0), _source(1)], 2, 100, backend, race=RaceSettings(first=2, max_seeds=5))
    assert race_runs(companion).keys() == {0, 1} and next_run(companion) == "run"  # more seeds: the race goes on


def test_a_race_won_because_the_other_run_failed_says_so() -> None:
    settings = RaceSettings(first=2)
    state = replay(settings, [0, 1], {0: {0: 7.0, 1: math.nan}, 1: {0: 7.1, 1: 7.2}})
    assert Race(settings, state).sentence({}).endswith(
        "trial 1 is the only candidate left: the others' runs failed (no test separated them); dropped: trial 0 "
        "after 2 seeds (a run failed)")


def test_a_worker_of_a_finished_race_exits_at_once_without_caching_data(tmp_path: Path) -> None:
    path = _fake_search(tmp_path)
    loaded = load_study_config(path)
    backend = study_backend(loaded)
    plan_confirmation(loaded, [_source(0), _source(1)], 2, 100, backend, race=RaceSettings(first=2, max_seeds=2))
    companion = open_companion(loaded, backend)
    assert has_work(companion)
    work_loop(companion, backend, _TableObjective({0: [7.0, 7.1], 1: [7.2, 7.0]}), next_run)
    assert advance_race(companion).stop == "budget" and not has_work(companion)
    assert main(["worker", str(path), "--confirm", *CPU, "--data-dir", str(tmp_path / "data")]) == 0
    assert not (tmp_path / "data").exists() and not (tmp_path / "trials").exists()


def test_a_failed_run_drops_its_candidate(tmp_path: Path) -> None:
    values = {0: [7.0, 7.2, 6.9], 1: [7.1, math.inf, 7.0], 2: [7.2, 7.0, 7.3]}
    companion, _ = _race(tmp_path, values, RaceSettings(first=3, max_seeds=3))
    state = advance_race(companion)
    assert state.dropped[1].failed and state.stop == "budget"


def test_a_race_keeps_its_settings_and_a_fixed_plan_is_not_turned_into_a_race(tmp_path: Path) -> None:
    loaded = load_study_config(write_study(tmp_path))
    backend = study_backend(loaded)
    plan_confirmation(loaded, [_source(0), _source(1)], 3, 100, backend, race=RaceSettings(first=3))
    with pytest.raises(ConfigError, match=r"race: this study's race runs with --confidence 0.95"):
        plan_confirmation(loaded, [_source(0), _source(1)], 3, 100, backend,
                          race=RaceSettings(first=3, confidence=0.9))
    with pytest.raises(ConfigError, match="its confirmation is a race"):
        plan_confirmation(loaded, [_source(0), _source(1)], 3, 100, backend)
    (tmp_path / "other").mkdir()
    other = load_study_config(write_study(tmp_path / "other", name="other"))
    plan_confirmation(other, [_source(0)], 2, 100, race=None)
    with pytest.raises(ConfigError, match="fixed plan"):
        plan_confirmation(other, [_source(0), _source(1)], 3, 100, race=RaceSettings(first=3))


def _fake_search(tmp_path: Path, n: int = 3) -> Path:
    """A study file and a search with `n` completed trials of distinct parameters (no training)."""
    path = write_study(tmp_path)
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}")
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(
            params={"x": i}, distributions={"x": optuna.distributions.IntDistribution(0, 100)}, value=1.0 + i,
            user_attrs={"config": {}}))
    return path


def test_a_race_goes_on_with_its_settings_whatever_flags_repeat_them(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _fake_search(tmp_path)
    loaded = load_study_config(path)
    stored = RaceSettings(first=2, confidence=0.9, margin=0.02, max_seeds=4, budget=8, paired=True)
    plan_confirmation(loaded, [_source(0), _source(1)], 2, 100, race=stored)
    parser = build_parser()

    def settings(*flags: str) -> RaceSettings | None:
        return _race_settings(parser.parse_args(["confirm", str(path), "--race", *flags]), loaded, 3)

    assert settings() == stored  # nothing given: the race's own settings, not the defaults
    assert settings("--max-seeds", "6", "--budget", "12") == RaceSettings(2, 0.9, 0.02, 6, 12, True)
    assert settings("--top", "1") == stored  # the race's two candidates, whatever --top chooses now
    complete = {0, 1, 2}
    for flags, message in ((["--budget", "6"], "--budget 6 is below the race's 8; a race's limits may only grow"),
                           (["--test", "welch"], "race runs with --test paired"),
                           (["--seeds", "3"], "race runs with --seeds 2")):
        with pytest.raises(ConfigError, match=message):
            check_confirmation(loaded, [_source(0), _source(1)], 100, settings(*flags), complete)
    with pytest.raises(ConfigError, match="candidate trial 1 is no longer a completed trial of the search"):
        check_confirmation(loaded, [_source(0), _source(1)], 100, stored, {0, 2})
    other = tmp_path / "one"
    other.mkdir()
    assert main(["confirm", str(_fake_search(other)), "--top", "1", "--race", *CPU]) == 2
    assert "error: --race: races two or more candidates; --top 1 and --per chose 1" in capsys.readouterr().err


@pytest.mark.parametrize(("attr", "damaged"), [
    ("race", 1), ("race", None), ("race", {"settings": {"first": 3}, "candidates": [0, 1]}),
    ("race", {"settings": "x"}),
    ("race", {"settings": {**RaceSettings().to_dict(), "first": "3"}, "candidates": [0, 1]}),
    ("race", {"settings": {**RaceSettings().to_dict(), "budget": 1}, "candidates": [0, 1]}),
    ("race", {"settings": RaceSettings().to_dict(), "candidates": [0, -1]}),
    ("planned", "abc"), ("planned", 5), ("planned", [[0, "x"]]), ("samples", "abc"), ("samples", None),
    ("samples", 0),
])
def test_a_damaged_companion_is_one_error_line_before_anything_is_cached(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], attr: str, damaged: object) -> None:
    path = _fake_search(tmp_path)
    loaded = load_study_config(path)
    plan_confirmation(loaded, [_source(0), _source(1)], 2, 100, race=RaceSettings(first=2))
    assert main(["confirm", str(path), "--race", "--seeds", "2", "--test", "paired", *CPU, "--data-dir",
                 str(tmp_path / "data")]) == 2  # another test mid-race: refused before any data is cached
    assert "error: race: this study's race runs with --test welch; a race keeps the settings it started with" in \
        capsys.readouterr().err and not (tmp_path / "data").exists()
    open_companion(loaded).set_user_attr(attr, damaged)
    for command in (["status", str(path)], ["confirm", str(path), "--race", *CPU, "--data-dir", str(tmp_path / "data")],
                    ["worker", str(path), "--confirm", *CPU, "--data-dir", str(tmp_path / "data")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hpsearch: error: study 'tiny.confirm': its stored {attr!r} attribute is not one "
                              "hpsearch wrote (got ") and "allowed: " in err and err.count("\n") == 1
        assert not (tmp_path / "data").exists() and not (tmp_path / "trials").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--margin", "0.02"], "--margin: only with --race"),
    (["--race", "--seeds", "1"], "--seeds: a race's first round needs at least 2 seeds"),
    (["--race", "--seeds", "4", "--max-seeds", "3"], "at most --max-seeds (3); got 4"),
    (["--race", "--seeds", "6"], "at most --max-seeds (5); got 6"),
    (["--race", "--confidence", "1"], "--confidence: must be in [0.5, 1)"),
    (["--race", "--confidence", "nan"], "--confidence: must be in [0.5, 1)"),
    (["--race", "--margin", "-0.1"], "--margin: relative, in [0, 1)"),
    (["--race", "--max-seeds", "0"], "--max-seeds: must be in 1..1000"),
    (["--race", "--budget", "2"], "--budget: must be in 4..10000000 (the first round alone is 2 candidates × 2 "
                                  "seeds = 4 runs); got 2"),
    (["--race", "--budget", "10000001"], "--budget: must be in 4..10000000"),
])
def test_race_flags_are_checked_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     flags: list[str], message: str) -> None:
    path = _fake_search(tmp_path)
    assert main(["confirm", str(path), "--top", "2", *flags, *CPU, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpsearch: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "data").exists()
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    assert "tiny.confirm" not in {s.study_name for s in optuna.get_all_study_summaries(storage)}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
def test_a_race_killed_mid_round_goes_on_with_two_workers_and_repeats_no_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real training: a two-worker race is killed (SIGKILL, workers and all) after its first runs; two fresh
    `hpsearch worker --confirm` processes finish it; every (candidate, seed) has one completed run, run i of
    both candidates trained with the same seed, and status states the stopping reason and P(best)."""
    data_dir = tmp_path / "data"
    path = write_study(tmp_path, enqueue=[GOOD, {**GOOD, "d_cond": "acgan"}], stop={"n_trials": 2},
                       pruner={"name": "none"})
    assert main(["run", str(path), "--data-dir", str(data_dir), *CPU]) == 0
    flags = ["--top", "2", "--race", "--seeds", "2", "--max-seeds", "3", "--samples", "100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPSEARCH_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hpsearch", "confirm", str(path), *flags, "--workers", "2",
                             "--data-dir", str(data_dir)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            runs = optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()
        except KeyError:
            runs = []
        if sum(r.state == TrialState.COMPLETE for r in runs) >= 1:
            break
        time.sleep(0.5)
    for pid in [*_children(proc.pid), proc.pid]:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    done_before = {(r.params["source"], r.params["seed_index"]): r.number for r in
                   optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()
                   if r.state == TrialState.COMPLETE}
    assert 1 <= len(done_before) < 4  # killed inside the first round (2 candidates x 2 seeds)
    workers = [worker(path, data_dir, "--confirm") for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=600) == 0, w.stdout.read() if w.stdout else ""
    runs = optuna.load_study(study_name="tiny.confirm", storage=storage).get_trials()
    complete = [r for r in runs if r.state == TrialState.COMPLETE]
    keys = [(r.params["source"], r.params["seed_index"]) for r in complete]
    assert len(keys) == len(set(keys)) >= 4  # no run twice; the first round at least
    assert all({(r.params["source"], r.params["seed_index"]): r.number for r in complete}[k] == n
               for k, n in done_before.items())  # a run done before the kill was not run again
    assert all(r.user_attrs["train_seed"] == run_seeds(0, r.params["seed_index"])[0] for r in complete)  # paired
    assert all(r.state in (TrialState.COMPLETE, TrialState.FAIL) for r in runs)  # the killed ones failed, retried
    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "race (Welch t tests, 95% confidence of keeping the best" in out
    assert ("separated:" in out or "budget spent:" in out) and "P(best)" in out
