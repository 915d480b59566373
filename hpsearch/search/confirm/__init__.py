"""Confirmation runs: the search's leading configurations trained again with fresh seeds, measured independently.

A search ranks designs by single runs: one training seed, one evaluation batch, and a value
that is the best of several evaluations (biased low by their noise). `hpsearch confirm`
trains each chosen configuration N more times with fresh training seeds at the full step
budget, without pruning, and measures each run once more on an evaluation batch drawn with
another seed and `samples` images, so the batch that chose the run's best generator does
not score it. The runs are trials of a companion study `<study>.confirm` in the same
storage: workers, heartbeats, retries, the proxy and the dashboard handle them like any
trial, and each run is enqueued once as (source trial, seed index), so re-running `confirm`
resumes and never duplicates a run.

Run i of every configuration trains with the same seed (derived from the study's base seed and
i: the same initialisation stream, data order and evaluation batch), so configurations are
compared on paired seeds. A fixed confirmation plans K × N runs at once; a race
(`hpsearch.racing`) plans one round at a time: its state is a function of the runs that
exist, and whoever finds a round complete (a worker, or `hpsearch confirm` itself) tests it
and plans the next round, so several workers on several machines share a race and a killed
race continues from its runs.
"""

from hpsearch.search.confirm.companion import (
    RACE_ATTR,
    SUFFIX,
    check_companion,
    companion_name,
    existing_companion,
    open_companion,
    planned_runs,
    race_settings,
)
from hpsearch.search.confirm.plan import (
    RACE_FLAGS,
    check_confirmation,
    check_per,
    check_plan,
    choose_sources,
    plan_confirmation,
    stored_race,
)
from hpsearch.search.confirm.result import Confirmation, Race, confirmation
from hpsearch.search.confirm.rounds import WAIT_POLL_S, advance_race, has_work, next_run, race_runs, race_state
from hpsearch.search.confirm.run import ConfirmObjective, run_seeds, source_records

__all__ = [
    "RACE_ATTR", "RACE_FLAGS", "SUFFIX", "WAIT_POLL_S", "Confirmation", "ConfirmObjective", "Race", "advance_race",
    "check_companion", "check_confirmation", "check_per", "check_plan", "choose_sources", "companion_name",
    "confirmation", "existing_companion", "has_work", "next_run", "open_companion", "plan_confirmation",
    "planned_runs", "race_runs", "race_settings", "race_state", "run_seeds", "source_records", "stored_race",
]
