"""A race's rounds in the companion study: its state replayed from the runs that exist, the next round
planned by whoever finds one complete, and what a worker does next ("run", "wait" or "done")."""


from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

from hpsearch.racing import RaceSettings, RaceState, replay
from hpsearch.search.confirm.companion import enqueue_runs, race_settings

WAIT_POLL_S = 2.0  # a race's worker with no run to take polls this often for the next round


def race_runs(companion: optuna.Study) -> dict[int, dict[int, float]]:
    """source → {seed index: value} of the runs that ended: a completed run's value, NaN for a run that
    failed or was pruned with no attempt of it waiting or running (a retry keeps it pending)."""
    ended: dict[tuple[int, int], float] = {}
    pending: set[tuple[int, int]] = set()
    for trial in companion.get_trials(deepcopy=False):
        if "source" not in trial.params:
            continue
        key = (int(trial.params["source"]), int(trial.params["seed_index"]))
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            ended[key] = float(trial.value)
        elif trial.state in (TrialState.WAITING, TrialState.RUNNING):
            pending.add(key)
        elif key not in ended:
            ended[key] = math.nan
    runs: dict[int, dict[int, float]] = {}
    for (source, index), value in ended.items():
        if (source, index) not in pending or math.isfinite(value):
            runs.setdefault(source, {})[index] = value
    return runs


def race_state(companion: optuna.Study) -> tuple[RaceSettings, RaceState[int]] | None:
    """The race's settings and where it stands, replayed from the runs that exist (reading only); None when
    the confirmation is not a race."""
    found = race_settings(companion)
    if found is None:
        return None
    return found[0], replay(found[0], found[1], race_runs(companion))


def advance_race(companion: optuna.Study) -> RaceState[int] | None:
    """Test every round the runs complete and enqueue the runs the next round needs (the caller holds the
    companion's claim lock). Returns the race's state (None when the confirmation is not a race)."""
    found = race_state(companion)
    if found is None:
        return None
    enqueue_runs(companion, found[1].needed)
    return found[1]


def has_work(companion: optuna.Study) -> bool:
    """Whether a confirmation worker would find anything to do (reading only): a run waiting or running, or a
    race that has not stopped (its next round is planned by the worker that finds this one complete)."""
    if companion.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        return True
    found = race_state(companion)
    return found is not None and found[1].stop is None


def next_run(companion: optuna.Study) -> str:
    """What a confirmation worker does next, decided under the companion's claim lock: "run" a waiting
    run, "wait" for others' runs of a race's round to end (then the next round is planned), or "done".
    A fixed plan is done once no run waits; a race once it has stopped."""
    state = advance_race(companion)
    trials = companion.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    if any(t.state == TrialState.WAITING for t in trials):
        return "run"
    return "wait" if state is not None and state.stop is None and trials else "done"
