"""The ground-truth table (benchmarks/data/ground_truth.csv) and the replay of searches on it (issue 25, items 5-6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.ground_truth import (
    D_COND,
    D_SN,
    FULL,
    G_COND,
    STEPS,
    read_table,
    replay_search,
    run_replays,
    write_table,
)
from hpsearch.racing import RaceSettings


def test_the_committed_table_holds_every_configuration_with_at_least_three_seeds_and_whole_curves():
    table = read_table()
    assert set(table.runs) == {(g, d, sn) for g in G_COND for d in D_COND for sn in D_SN}  # 4 x 4 x 2
    for runs in table.runs.values():
        assert len({r.seed for r in runs}) >= 3
        for run in runs:
            assert sorted(run.curve) == list(STEPS) and run.kept == min(run.curve.values())
            assert len(run.remeasured) == 2
    assert table.best() in table.within_noise()


def test_the_table_reads_back_what_it_wrote(tmp_path: Path):
    table = read_table()
    write_table(table, tmp_path / "t.csv")
    assert read_table(tmp_path / "t.csv").truth() == pytest.approx(table.truth(), rel=1e-4)


def test_a_replayed_search_reports_stored_curves_and_costs_the_steps_it_trained():
    table = read_table()
    searched = replay_search(table, "tpe", "hyperband", 12, seed=3)
    assert len(searched.trials) == 12 and searched.trials[0][0] == ("cbn_linear", "projection", True)  # enqueued
    for config, value, steps in searched.trials:
        assert steps in STEPS and (value is None) == (steps < FULL)
        assert value is None or value in {r.kept for r in table.runs[config]}
    assert searched.prefix(8).trials == searched.trials[:8]
    assert len(searched.top(3)) == len(set(searched.top(3))) <= 3


def test_replays_give_probabilities_with_intervals_and_costs():
    rows = run_replays(read_table(), 3, [RaceSettings(first=2, max_seeds=4)], ["random"], ["none"], [8])
    assert {r["strategy"] for r in rows} == {"none", "top 3 x 3", "top 3 x 5", "race 2-4 welch"}
    for row in rows:
        assert 0 <= row["p_best"] <= row["p_within_noise"] <= 1 and row["replays"] == 3
        low, high = row["p_within_noise_ci"]
        assert low <= row["p_within_noise"] <= high and row["regret"] >= 0
        assert row["cost_steps"] == 8 * FULL + row["confirm_runs"] * FULL  # no pruner: every trial to the end
