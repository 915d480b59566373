"""Planning confirmation runs: choosing the candidates, the companion study, and checking a plan or race
against what is stored (a re-run resumes, never duplicates, and refuses a changed plan)."""


from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.trial import TrialState

from hpsearch.errors import ConfigError
from hpsearch.racing import RaceSettings
from hpsearch.search.backend import Backend
from hpsearch.search.confirm.companion import (
    RACE_ATTR,
    check_companion,
    enqueue_runs,
    existing_companion,
    open_companion,
    planned_runs,
    race_settings,
)
from hpsearch.search.confirm.rounds import advance_race
from hpsearch.search.record import TrialRecord
from hpsearch.search.study import study_backend
from hpsearch.search.study_file import LoadedStudy

_logger = logging.getLogger(__name__)


def check_per(search: optuna.Study, per: list[str]) -> None:
    """Each `per` parameter is a searched choice: one best trial per value of a range would plan one
    "configuration" per number the search happened to draw.

    Raises:
        ConfigError: naming the parameter, what it is, and the choices there are.
    """
    kinds: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        kinds.update(trial.distributions)
    choices = sorted(k for k, d in kinds.items() if isinstance(d, optuna.distributions.CategoricalDistribution))
    for param in per:
        if param in kinds and param not in choices:
            kind = "an integer range" if isinstance(kinds[param], optuna.distributions.IntDistribution) else "a range"
            raise ConfigError(f"per {param!r}: {kind}, not a choice; the best trial per value is asked of a "
                              f"searched choice: {choices}")


def choose_sources(trials: list[TrialRecord], top: int, per: list[str]) -> list[TrialRecord]:
    """The best completed trials of the `top` best configurations, then the best completed trial for each value
    of each `per` parameter.

    A configuration drawn twice by the search (same parameters) is one candidate: its confirmation
    runs would train the same config with the same seeds twice.

    Raises:
        ConfigError: no completed trial, or a `per` parameter that no completed trial has.
    """
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                       and math.isfinite(t.value)), key=lambda t: t.objective_value)
    if not complete:
        raise ConfigError("the study has no completed trial to confirm")
    distinct: dict[str, TrialRecord] = {}
    for t in complete:
        distinct.setdefault(repr(sorted(t.params.items())), t)
    complete = list(distinct.values())
    chosen = {t.number: t for t in complete[:top]}
    for param in per:
        values = sorted({repr(t.params[param]) for t in complete if param in t.params})
        if not values:
            searched = sorted({p for t in complete for p in t.params})
            raise ConfigError(f"per {param!r}: no completed trial has this parameter; searched: {searched}")
        for value in values:
            best = next(t for t in complete if param in t.params and repr(t.params[param]) == value)
            chosen.setdefault(best.number, best)
    return sorted(chosen.values(), key=lambda t: t.objective_value)


def plan_confirmation(loaded: LoadedStudy, sources: list[TrialRecord], seeds: int, samples: int,
                      backend: Backend | None = None, race: RaceSettings | None = None,
                      complete: set[int] | None = None) -> int:
    """Create the companion study if need be and plan its runs under its claim lock: two `hpsearch
    confirm` started together would otherwise both read the plan and enqueue a run twice.

    Args:
        seeds: runs per configuration (a race: its first round).
        race: plan a race over `sources` instead of `seeds` runs of each.
        complete: the search's completed trials (default: the sources).

    Returns:
        how many runs the plan now holds.

    Raises:
        ConfigError: as `check_plan`.
    """
    backend = backend if backend is not None else study_backend(loaded)
    complete = complete if complete is not None else {s.number for s in sources}
    companion = open_companion(loaded, backend, create=True)
    lock = backend.claim_lock(companion.study_name).acquire()
    try:
        stored = check_plan(companion, sources, samples, race, complete)
        companion.set_user_attr("samples", samples)
        if stored is None:
            enqueue_runs(companion, [(source.number, index) for source in sources for index in range(seeds)])
            return planned_runs(companion)
        if sorted(stored["candidates"]) != sorted(s.number for s in sources):
            _logger.warning("the race goes on with its candidates, trials %s (the search's choice now: %s)",
                            stored["candidates"], [s.number for s in sources])
        companion.set_user_attr(RACE_ATTR, stored)
        advance_race(companion)
        return planned_runs(companion)
    finally:
        lock.release()


def check_confirmation(loaded: LoadedStudy, sources: list[TrialRecord], samples: int, race: RaceSettings | None,
                       complete: set[int], backend: Backend | None = None) -> None:
    """`check_plan` against the companion study when there is one, reading only: run before any data is
    cached or anything created, so that a refused confirm leaves nothing behind."""
    companion = existing_companion(loaded, backend)
    if companion is not None:
        check_plan(companion, sources, samples, race, complete)


def stored_race(loaded: LoadedStudy, backend: Backend | None = None) -> tuple[RaceSettings, list[int]] | None:
    """The race the companion study holds (settings, candidates), or None (no companion, or a fixed plan)."""
    companion = existing_companion(loaded, backend)
    return race_settings(companion) if companion is not None else None


_GROWABLE = ("max_seeds", "budget")  # a race stopped on its budget may be given more; nothing else may change


RACE_FLAGS = {"first": "--seeds", "confidence": "--confidence", "margin": "--margin", "max_seeds": "--max-seeds",
              "budget": "--budget", "paired": "--test"}


def check_plan(companion: optuna.Study, sources: list[TrialRecord], samples: int, race: RaceSettings | None,
               complete: set[int]) -> dict[str, Any] | None:
    """What planning would store, checked against what the companion holds; writes nothing.

    Runs stay comparable (the same `samples`), a fixed plan is not turned into a race nor a race
    into a fixed plan, and a race keeps its candidates (the search may have found others since: a
    new race needs a study of its own; each must still be a completed search trial) and its
    confidence, margin, first round and test: changing them mid-race would void the chance the race
    promises. `max_seeds` and `budget` may grow, never shrink (a race stopped on its budget goes on).

    Args:
        complete: the numbers of the search's completed trials.

    Returns:
        the race attribute to store (None for a fixed plan).

    Raises:
        ConfigError: naming what differs and what the stored confirmation has.
    """
    check_companion(companion)
    stored_samples = companion.user_attrs.get("samples")
    if stored_samples is not None and stored_samples != samples:
        raise ConfigError(f"samples: this study's confirmation runs were measured with {stored_samples} samples; "
                          f"confirm with the same number so that all runs are comparable (got {samples})")
    found = race_settings(companion)
    if race is None:
        if found is not None:
            raise ConfigError(f"study {companion.study_name!r}: its confirmation is a race; go on with `hpsearch "
                              "confirm --race` (the race's settings are kept) or confirm in a study of its own")
        return None
    wanted = race.to_dict()
    if found is None:
        if companion.user_attrs.get("planned"):
            raise ConfigError("race: this study's confirmation runs are a fixed plan (`hpsearch confirm` without "
                              "--race); go on without --race, or race in a study of its own")
        return {"settings": wanted, "candidates": [s.number for s in sources]}
    old, candidates = found[0].to_dict(), found[1]
    gone = [c for c in candidates if c not in complete]
    if gone:
        raise ConfigError(f"race: its candidate trial {gone[0]} is no longer a completed trial of the search; the "
                          "race cannot go on (race again in a study of its own)")
    changed = [k for k in wanted if k not in _GROWABLE and wanted[k] != old[k]]
    if changed:
        shown = {**old, "paired": "paired" if old["paired"] else "welch"}
        raise ConfigError("race: this study's race runs with " + ", ".join(f"{RACE_FLAGS[k]} {shown[k]}"
                                                                            for k in changed)
                          + "; a race keeps the settings it started with (its error promise rests on them)")
    shrunk = [k for k in _GROWABLE if _lower(wanted[k], old[k])]
    if shrunk:
        k = shrunk[0]
        raise ConfigError(f"race: {RACE_FLAGS[k]} {wanted[k]} is below the race's {old[k] or 'unlimited'}; a race's "
                          "limits may only grow")
    return {"settings": wanted, "candidates": candidates}


def _lower(new: object, old: object) -> bool:
    """A limit below the old one (None: no limit)."""
    return isinstance(new, int) and (old is None or isinstance(old, int) and new < old)
