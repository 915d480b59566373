"""The race's decisions (`hpsearch.racing.replay`), P(best), and the error rate the race promises, by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks.ground_truth import read_table
from hpsearch.racing import RaceSettings, p_best, replay

# The noise measured on digits: every run of the ground-truth table (benchmarks/data/ground_truth.csv, 32
# configurations x several training seeds, each run's kept generator re-measured on other batches) relative to
# its configuration's mean. Heavier-tailed than a normal: collapsing configurations jump by tens of percent.
DIGITS_RESIDUALS = read_table().residuals()
DIGITS_BEST = min(read_table().truth().values())


def _runs(values: dict[int, list[float]]) -> dict[int, dict[int, float]]:
    return {c: dict(enumerate(v)) for c, v in values.items()}


def test_a_race_first_asks_every_candidate_for_the_first_seeds():
    state = replay(RaceSettings(first=3), [4, 9], {4: {0: 7.0}})
    assert state.stop is None and state.rounds == 0
    assert state.needed == [(4, 1), (4, 2), (9, 0), (9, 1), (9, 2)]


def test_a_clearly_worse_candidate_is_dropped_after_the_first_round_and_the_race_is_separated():
    runs = _runs({0: [7.0, 7.2, 6.9], 1: [30.0, 31.0, 29.5]})
    state = replay(RaceSettings(first=3, paired=False), [0, 1], runs)
    assert state.stop == "separated" and state.survivors == [0]
    assert state.dropped[1].round == 1 and state.dropped[1].leader == 0 and state.dropped[1].p < 0.025
    assert state.spent == 6


def test_close_candidates_go_on_one_seed_per_round_then_stop_on_the_budget_naming_both():
    values = {0: [7.0, 8.0, 6.5, 7.5, 7.2], 1: [7.1, 7.9, 6.8, 7.4, 7.3]}
    state = replay(RaceSettings(first=3, max_seeds=4), [0, 1], _runs({c: v[:3] for c, v in values.items()}))
    assert state.needed == [(0, 3), (1, 3)] and state.rounds == 1 and state.seeds == 4
    state = replay(RaceSettings(first=3, max_seeds=4), [0, 1], _runs(values))
    assert state.stop == "budget" and set(state.survivors) == {0, 1} and state.rounds == 2 and state.spent == 8


def test_a_budget_of_runs_stops_before_a_round_that_would_pass_it():
    values = {c: [7.0 + 0.1 * c + 0.5 * (i % 2) for i in range(10)] for c in range(3)}
    state = replay(RaceSettings(first=2, max_seeds=10, budget=10, paired=False), [0, 1, 2], _runs(values))
    assert state.stop == "budget" and state.spent <= 10 and state.seeds == 3


def test_survivors_within_the_margin_are_equivalent():
    rng = np.random.default_rng(0)
    values = {c: list(7.0 + rng.normal(0, 0.01, 6)) for c in range(2)}
    state = replay(RaceSettings(first=6, max_seeds=6, margin=0.02), [0, 1], _runs(values))
    assert state.stop == "equivalent" and len(state.survivors) == 2
    assert replay(RaceSettings(first=6, max_seeds=6), [0, 1], _runs(values)).stop == "budget"  # margin 0: never


def test_a_candidate_whose_run_failed_leaves_the_race():
    runs = _runs({0: [7.0, 7.2, 6.9], 1: [7.1, math.nan, 7.0], 2: [7.3, 7.0, 7.1]})
    state = replay(RaceSettings(first=3), [0, 1, 2], runs)
    assert state.dropped[1].failed and 1 not in state.survivors


def test_when_the_leader_fails_those_dropped_against_it_come_back_and_run_the_seeds_they_missed():
    runs = _runs({0: [100.0, 101.0, 102.0, math.nan], 1: [150.0, 160.0, 170.0], 2: [150.0, 155.0, 230.0, 200.0]})
    settings = RaceSettings(first=3, paired=False)
    assert replay(settings, [0, 1, 2], {c: {i: v for i, v in r.items() if i < 3} for c, r in runs.items()}
                  ).dropped[1].leader == 0  # round 1: 1 is worse than 0
    state = replay(settings, [0, 1, 2], runs)
    assert state.dropped[0].failed and 1 not in state.dropped and state.needed == [(1, 3)]
    runs[1][3] = 165.0
    state = replay(settings, [0, 1, 2], runs)
    assert state.rounds == 2 and set(state.survivors) | set(state.dropped) == {0, 1, 2} and state.dropped[0].failed


def test_catching_up_after_a_failure_never_passes_the_budget_and_spent_counts_runs_that_exist():
    runs = _runs({0: [100.0, 101.0, 102.0, math.nan], 1: [150.0, 160.0, 170.0], 2: [100.5, 101.5, 101.0, 100.8]})
    settings = RaceSettings(first=3, max_seeds=6, budget=12, paired=False)
    state = replay(settings, [0, 1, 2], runs)  # 1 dropped vs 0 after 3 seeds; 0 fails at its 4th: 1 comes back
    assert state.stop is None and state.needed == [(1, 3)] and state.spent == 11  # runs that exist, 4 + 3 + 4
    tight = replay(RaceSettings(first=3, max_seeds=6, budget=11, paired=False), [0, 1, 2], runs)
    assert tight.stop == "budget" and tight.spent == 11  # 1's catch-up run would be the 12th


def test_runs_past_the_round_a_candidate_reached_change_nothing_and_more_seeds_keep_past_decisions():
    values = {0: [7.0, 7.2, 6.9, 7.1], 1: [30.0, 31.0, 29.5, 1.0], 2: [7.2, 7.1, 7.4, 7.0]}
    short = replay(RaceSettings(first=3, max_seeds=4, paired=False), [0, 1, 2], _runs(values))
    longer = replay(RaceSettings(first=3, max_seeds=8, paired=False), [0, 1, 2], _runs(values))
    assert short.dropped[1] == longer.dropped[1]  # the fourth run of 1 (a lucky 1.0) came after its drop
    assert longer.needed == [(0, 4), (2, 4)] or longer.needed == [(2, 4), (0, 4)]


def test_settings_refuse_what_would_make_the_test_meaningless():
    for kwargs in ({"first": 1}, {"first": 5, "max_seeds": 4}, {"confidence": 1.0}, {"margin": -0.1},
                   {"budget": 0}):
        with pytest.raises(ValueError):
            RaceSettings(**kwargs)  # type: ignore[arg-type]


def test_p_best_sums_to_one_and_follows_the_evidence():
    p = p_best({0: [7.0, 7.3, 6.8], 1: [7.1, 7.4, 7.0], 2: [30.0, 31.0, 29.0], 3: [math.nan]})
    assert p is not None and sum(p.values()) == pytest.approx(1.0)
    assert p[0] > p[1] > p[2] and p[2] < 0.001 and p[3] == 0.0
    assert p_best({0: [7.0], 1: [8.0]}) is None  # no spread to judge by
    assert p == p_best({0: [7.0, 7.3, 6.8], 1: [7.1, 7.4, 7.0], 2: [30.0, 31.0, 29.0], 3: [math.nan]})


def _simulate(means: list[float], settings: RaceSettings, races: int, seed: int) -> tuple[int, float]:
    """Races on digits' noise (each run: its candidate's mean times one plus a residual drawn from the table's):
    how many named a wrong best (dropped the true best, or stopped "separated" or "equivalent" on another), and
    their mean cost in runs."""
    rng = np.random.default_rng(seed)
    best, wrong, cost = int(np.argmin(means)), 0, 0
    for _ in range(races):
        noise = DIGITS_RESIDUALS[rng.integers(DIGITS_RESIDUALS.size, size=(settings.max_seeds, len(means)))]
        draws = np.asarray(means) * (1 + noise)  # (seeds, candidates)
        state = replay(settings, list(range(len(means))), {c: dict(enumerate(draws[:, c])) for c in range(len(means))})
        wrong += best in state.dropped or (state.stop != "budget" and state.leader != best)
        cost += state.spent
    return wrong, cost / races


def _upper(k: int, n: int) -> float:
    """The 95% Clopper-Pearson upper bound of a rate of k in n."""
    return float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0


@pytest.mark.parametrize("paired", [True, False])
def test_the_race_names_a_wrong_best_in_at_most_one_minus_confidence_of_2000_races(paired):
    """The hardest case the promise covers: the best (at the table's best mean) leads the next by exactly the
    margin (2%), and the third ties with the second, on the noise measured on digits."""
    margin, races = 0.02, 2000
    means = [DIGITS_BEST, DIGITS_BEST * (1 + margin), DIGITS_BEST * (1 + margin)]
    settings = RaceSettings(first=3, max_seeds=10, margin=margin, paired=paired)
    wrong, cost = _simulate(means, settings, races, seed=1)
    print(f"paired={paired}: wrong best in {wrong}/{races} = {wrong / races:.2%} (95% upper bound "
          f"{_upper(wrong, races):.2%}); mean cost {cost:.1f} runs against 30 for a fixed 3 x 10")
    assert wrong / races <= 1 - settings.confidence


def test_the_race_spends_less_than_a_fixed_confirmation_where_candidates_differ_clearly():
    """Candidates as a search's top 3 on digits can be (best, 1.6 x, 2.7 x): the race drops the two after a few
    seeds."""
    settings = RaceSettings(first=3, max_seeds=5, paired=False)
    wrong, cost = _simulate([DIGITS_BEST, 1.6 * DIGITS_BEST, 2.7 * DIGITS_BEST], settings, 500, seed=2)
    assert wrong == 0 and cost < 15  # a fixed 3 x 5 spends 15
