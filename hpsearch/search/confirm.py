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

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from hpsearch.checkpoint import BEST_GENERATOR
from hpsearch.config import MAX_SEED, from_dict, replace_sections
from hpsearch.data import ImageDataset
from hpsearch.errors import ConfigError
from hpsearch.findings import Ranked, effects, rank, sentence
from hpsearch.racing import RaceSettings, RaceState, p_best, replay
from hpsearch.runner import remeasure, run_training
from hpsearch.search.backend import Backend
from hpsearch.search.config import LoadedStudy
from hpsearch.search.objective import trial_run_dir, upload_run
from hpsearch.search.record import TrialRecord, TrialWriter, read_trial, read_trials
from hpsearch.search.storage import storage_seconds
from hpsearch.search.study import make_storage, study_backend
from hpsearch.training import describe_device

_logger = logging.getLogger(__name__)

SUFFIX = ".confirm"
SEED_STRIDE = 1_000_003  # run i of every configuration trains with the base seed + (i + 1) * this (mod 2**31-1)
WAIT_POLL_S = 2.0  # a race's worker with no run to take polls this often for the next round
_MAX_SOURCE, _MAX_SEEDS = 10_000_000, 10_000  # the ranges of the two parameters that name a run


def companion_name(study: str) -> str:
    return study + SUFFIX


def open_companion(loaded: LoadedStudy, backend: Backend | None = None, create: bool = False) -> optuna.Study:
    """The companion study of confirmation runs (in the search's storage).

    Raises:
        ConfigError: it does not exist and `create` is False.
    """
    storage = backend.storage if backend is not None else make_storage(loaded, must_exist=not create)
    name = companion_name(loaded.cfg.study)
    if not create and name not in {s.study_name for s in storage.get_all_studies()}:
        raise ConfigError(f"study {loaded.cfg.study!r} has no confirmation runs yet; start them with "
                          "`hpsearch confirm`")
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True,
                               sampler=optuna.samplers.RandomSampler(), pruner=optuna.pruners.NopPruner())


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
            _enqueue(companion, [(source.number, index) for source in sources for index in range(seeds)])
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
                       complete: set[int]) -> None:
    """`check_plan` against the companion study when there is one, reading only: run before any data is
    cached or anything created, so that a refused confirm leaves nothing behind."""
    companion = existing_companion(loaded)
    if companion is not None:
        check_plan(companion, sources, samples, race, complete)


def existing_companion(loaded: LoadedStudy) -> optuna.Study | None:
    """The companion study, its stored attributes checked (`check_companion`); None when there is none yet."""
    try:
        companion = open_companion(loaded)
    except ConfigError:
        return None
    check_companion(companion)
    return companion


def stored_race(loaded: LoadedStudy) -> tuple[RaceSettings, list[int]] | None:
    """The race the companion study holds (settings, candidates), or None (no companion, or a fixed plan)."""
    companion = existing_companion(loaded)
    return race_settings(companion) if companion is not None else None


RACE_ATTR = "race"
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


def check_companion(companion: optuna.Study) -> None:
    """The attributes hpsearch stores in a companion study are as it wrote them: a hand-edited or damaged
    one is refused with what is allowed, before it can crash a worker or a report.

    Raises:
        ConfigError: naming the attribute, what it holds and what is allowed.
    """
    attrs = companion.user_attrs
    samples = attrs.get("samples")
    if "samples" in attrs and not (type(samples) is int and samples >= 1):
        raise _damaged(companion, "samples", samples, "a positive number of images")
    planned = attrs.get("planned", [])
    if not isinstance(planned, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(type(v) is int and v >= 0 for v in p) for p in planned):
        raise _damaged(companion, "planned", planned, "a list of [source trial, seed index] pairs")
    race_settings(companion)


def _damaged(companion: optuna.Study, attr: str, value: object, allowed: str) -> ConfigError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConfigError(f"study {companion.study_name!r}: its stored {attr!r} attribute is not one hpsearch wrote "
                       f"(got {shown}; allowed: {allowed}); confirm in a study of its own")


def _enqueue(companion: optuna.Study, runs: list[tuple[int, int]]) -> None:
    """Enqueue each (source, seed index) run that was never planned, and record the plan."""
    planned = {tuple(p) for p in companion.user_attrs.get("planned", [])}
    for run in runs:
        if run not in planned:
            companion.enqueue_trial({"source": run[0], "seed_index": run[1]}, skip_if_exists=True)
            planned.add(run)
    companion.set_user_attr("planned", sorted([list(p) for p in planned]))


def race_settings(companion: optuna.Study) -> tuple[RaceSettings, list[int]] | None:
    """The companion's race settings and candidates, or None when its confirmation is not a race.

    Raises:
        ConfigError: the stored race is not one hpsearch wrote (edited by hand, or damaged).
    """
    attrs = companion.user_attrs  # one storage read
    if RACE_ATTR not in attrs:
        return None
    stored = attrs[RACE_ATTR]
    allowed = ("{settings: {" + ", ".join(RaceSettings().to_dict()) + "}, candidates: [2 or more distinct trial "
               "numbers]}, as `hpsearch confirm --race` writes it")
    try:
        raw, numbers = stored["settings"], stored["candidates"]
        types = {"first": int, "max_seeds": int, "budget": (int, type(None)), "confidence": float, "margin": float,
                 "paired": bool}
        if set(raw) != set(types) or any(type(raw[k]) not in (t if isinstance(t, tuple) else (t,))
                                         for k, t in types.items()):
            raise ValueError
        if not isinstance(numbers, list) or len(numbers) < 2 or len(set(numbers)) != len(numbers) or any(
                type(c) is not int or not 0 <= c <= _MAX_SOURCE for c in numbers):
            raise ValueError
        settings = RaceSettings(**raw)
        if settings.budget is not None and settings.budget < len(numbers) * settings.first:
            raise ValueError
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(companion, RACE_ATTR, stored, allowed) from exc
    return settings, list(numbers)


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
    _enqueue(companion, found[1].needed)
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


def planned_runs(companion: optuna.Study) -> int:
    return len(companion.user_attrs.get("planned", []))


def run_seeds(base_seed: int, index: int) -> tuple[int, int]:
    """The fresh training seed of run `index` of every configuration, and its (different) evaluation seed.

    From the study's base seed, not the source trial's: run i of every candidate must use the same
    seeds (paired), also in a study that searched the seed."""
    train = (base_seed + (index + 1) * SEED_STRIDE) % MAX_SEED
    return train, (train + 1) % MAX_SEED


class ConfirmObjective:
    """Trains one (source, seed index) run and returns its independently measured value.

    Args:
        loaded: the search's study file.
        sources: the search's trials by number (their configs are retrained).
        dataset, device, cache_dir, store: as for the search's objective.
        samples: generated images of the independent measurement.
        stop: polled between training steps (a graceful stop), or None.
    """

    def __init__(self, loaded: LoadedStudy, sources: Mapping[int, TrialRecord], dataset: ImageDataset,
                 device: torch.device, cache_dir: Path, store: FileSystemArtifactStore, samples: int,
                 stop: Callable[[], bool] | None = None) -> None:
        self.loaded, self.sources, self.dataset, self.device = loaded, sources, dataset, device
        self.cache_dir, self.store, self.samples, self.stop = cache_dir, store, samples, stop
        self.on_start: Callable[[], None] = lambda: None
        self.current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        self.current = trial.number
        source_number = trial.suggest_int("source", 0, _MAX_SOURCE)
        index = trial.suggest_int("seed_index", 0, _MAX_SEEDS)
        source = self.sources.get(source_number)
        if source is None or source.config is None:  # not an enqueued run (a worker raced past the plan)
            raise ConfigError(f"confirmation run of trial {source_number}: no such completed trial in the search")
        train_seed, eval_seed = run_seeds(self.loaded.base_config.train.seed, index)
        cfg = replace_sections(from_dict(source.config, f"trial {source_number} config"), train={"seed": train_seed})
        objective, record = self.loaded.cfg.objective, TrialWriter(trial)
        run_dir, retry = trial_run_dir(self.loaded.runs_dir / "confirm", trial)
        record.start(cfg, str(run_dir.resolve()), describe_device(self.device), objective)
        record.confirmation(source_number, index, train_seed, eval_seed, self.samples)
        start, storage_start = time.perf_counter(), storage_seconds()
        try:
            best = run_training(cfg, self.dataset, run_dir, self.device, self.cache_dir, resume=retry, metrics=True,
                                objective=objective, on_eval=[lambda step, _g, values: record.evaluation(step, values)],
                                stop=self.stop, progress=False)
            [measured] = remeasure(cfg, self.dataset, run_dir / BEST_GENERATOR, self.device, self.cache_dir,
                                   [eval_seed], self.samples)
            record.measurement(measured)
        finally:
            record.timing(time.perf_counter() - start, storage_seconds() - storage_start)
        upload_run(self.store, trial, record, run_dir, best)  # best_value: on the batch that chose it, biased low
        return float(measured[objective])


@dataclass
class Race:
    """A race's settings and where it stands (`hpsearch.racing`), for status and the report."""

    settings: RaceSettings
    state: RaceState[int]

    def sentence(self, names: Mapping[int, str]) -> str:
        """Why the race stopped (or where it is), e.g. "budget spent: trials 9 and 0 not separated (10 seeds
        each)", then who left it and when."""
        s, state = self.settings, self.state
        who = _and([self._name(names, c) for c in state.survivors])
        if state.stop == "separated" and state.survivors and all(d.failed for d in state.dropped.values()):
            head = f"{who} is the only candidate left: the others' runs failed (no test separated them)"
        elif state.stop == "separated" and state.survivors:
            rounds = f"{state.rounds} round{'s' if state.rounds != 1 else ''}"
            head = f"separated: {who} is the best after {rounds} ({state.seeds} seeds)"
        elif state.stop == "separated":
            head = "separated: every candidate left the race (their runs failed)"
        elif state.stop == "equivalent":
            head = f"equivalent within {s.margin:.0%}: {who} ({state.seeds} seeds each)"
        elif state.stop == "budget":
            head = f"budget spent: {who} not separated ({state.seeds} seeds each)"
        else:
            head = f"running: round {state.rounds + 1}, {who} at {state.seeds} seeds each"
        gone = [f"{self._name(names, c)} after {d.seeds} seeds ("
                + ("a run failed" if d.leader is None else f"worse than {self._name(names, d.leader)}, p = {d.p:.2g}")
                + ")" for c, d in self.state.dropped.items()]
        test = "paired t" if s.paired else "Welch t"
        return (f"race ({test} tests, {s.confidence:.0%} confidence of keeping the best, {state.spent} runs): {head}"
                + (f"; dropped: {'; '.join(gone)}" if gone else ""))


    @staticmethod
    def _name(names: Mapping[int, str], number: int) -> str:
        return names.get(number, f"trial {number}")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "none"


@dataclass
class Confirmation:
    """What a study's confirmation runs say, read once for status and the report.

    Attributes:
        objective: the minimized metric.
        ranking: configurations by their runs' mean confirmed value, each compared with the best
            (empty while no run has completed).
        effects: per searched choice with two or more confirmed values, its values ranked the same way.
        sources: configuration name (`describe`) → the search trial it retrains.
        done, planned: completed and planned runs; samples: images per independent measurement.
        collapsed: configuration name → how many of its runs' independent measurements were
            flagged `collapse` (absent: none).
        p_best: configuration name → the probability that it is the best given its runs
            (`hpsearch.racing.p_best`); None while no configuration has two runs.
        race: the race, when the confirmation is one.
    """

    objective: str
    ranking: list[Ranked]
    effects: dict[str, list[Ranked]]
    sources: dict[str, TrialRecord]
    done: int
    planned: int
    samples: int
    collapsed: dict[str, int] = field(default_factory=dict)
    p_best: dict[str, float] | None = None
    race: Race | None = None

    @property
    def winner(self) -> TrialRecord:
        """The search trial of the configuration with the lowest confirmed mean (needs a ranking)."""
        return self.sources[self.ranking[0].name]

    def sentences(self) -> list[str]:
        """The race's stopping reason (when a race), then one finding per configuration, worded from the numbers."""
        head = [self.race.sentence({s.number: name for name, s in self.sources.items()})] if self.race else []
        return head + [sentence(r, self.ranking[0], self.objective) + self.chance(r.name) + self.collapse_note(r.name)
                       for r in self.ranking]

    def chance(self, name: str) -> str:
        """" — P(best) 0.87" (empty without a posterior)."""
        if self.p_best is None:
            return ""
        p = self.p_best.get(name, 0.0)
        return f" — P(best) {p:.2f}" if 0.005 <= p <= 0.995 else f" — P(best) {'<0.01' if p < 0.5 else '>0.99'}"

    def collapse_note(self, name: str) -> str:
        """" — COLLAPSED in k of n runs" for a configuration whose generators collapsed; else empty."""
        k = self.collapsed.get(name, 0)
        if not k:
            return ""
        n = next(r.summary.n for r in self.ranking if r.name == name)
        return (f" — COLLAPSED in {k} of {n} runs (within-class MS-SSIM above the real images' by more than the "
                "margin): not a usable winner whatever its value")


def confirmation(loaded: LoadedStudy, search: optuna.Study) -> Confirmation | None:
    """The study's confirmation runs, ranked; None when it has none planned.

    Raises:
        ConfigError: the companion's stored attributes are damaged (`check_companion`).
    """
    companion = existing_companion(loaded)
    if companion is None:
        return None
    records = {t.number: t for t in read_trials(search)}
    runs = [r for r in companion.get_trials(deepcopy=False) if "source" in r.params]
    complete = [read_trial(r) for r in runs if r.state == TrialState.COMPLETE and r.value is not None
                and int(r.params["source"]) in records]
    confirmed = [(records[int(r.params["source"])], r.objective_value) for r in complete]
    by_config: dict[str, list[float]] = {}
    collapsed: dict[str, int] = {}
    for run, (source, value) in zip(complete, confirmed, strict=True):
        by_config.setdefault(describe(source), []).append(value)
        if (run.measured or {}).get("collapse") is True:
            collapsed[describe(source)] = collapsed.get(describe(source), 0) + 1
    found = race_state(companion)
    race = Race(*found) if found else None
    return Confirmation(loaded.cfg.objective, rank(by_config) if by_config else [], _effects(confirmed),
                        {describe(source): source for source, _ in confirmed},
                        sum(r.state == TrialState.COMPLETE for r in runs), planned_runs(companion),
                        int(companion.user_attrs.get("samples", 0)), collapsed, p_best(by_config), race)


def _effects(confirmed: list[tuple[TrialRecord, float]]) -> dict[str, list[Ranked]]:
    """Per searched choice with at least two confirmed values: each value's runs ranked (findings.effects)."""
    params = sorted({p for source, _ in confirmed for p, v in source.params.items() if isinstance(v, (str, bool))})
    result = {}
    for param in params:
        groups: dict[object, list[float]] = {}
        for source, value in confirmed:
            if param in source.params:
                groups.setdefault(source.params[param], []).append(value)
        if len(groups) >= 2:
            result[param] = effects(param, groups)
    return result


def describe(trial: TrialRecord) -> str:
    """A configuration's name in findings: its trial number and searched choices."""
    choices = ", ".join(f"{k}={v}" for k, v in trial.params.items() if isinstance(v, (str, bool)))
    return f"trial {trial.number}" + (f" ({choices})" if choices else "")


def source_records(search: optuna.Study) -> dict[int, TrialRecord]:
    return {t.number: read_trial(t) for t in search.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}


