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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from hpsearch.checkpoint import BEST_GENERATOR
from hpsearch.config import MAX_SEED, from_dict, replace_sections
from hpsearch.data import ImageDataset
from hpsearch.errors import ConfigError
from hpsearch.findings import Ranked, effects, rank, sentence
from hpsearch.runner import remeasure, run_training
from hpsearch.search.backend import Backend
from hpsearch.search.config import LoadedStudy
from hpsearch.search.objective import trial_run_dir, upload_run
from hpsearch.search.record import TrialRecord, TrialWriter, read_trial, read_trials
from hpsearch.search.storage import storage_seconds
from hpsearch.search.study import make_storage, study_backend
from hpsearch.training import describe_device

SUFFIX = ".confirm"
SEED_STRIDE = 1_000_003  # run i of a configuration trains with its search seed + (i + 1) * this (mod 2**31-1)
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
    """The `top` best completed trials, then the best completed trial for each value of each `per` parameter.

    Raises:
        ConfigError: no completed trial, or a `per` parameter that no completed trial has.
    """
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                       and math.isfinite(t.value)), key=lambda t: t.objective_value)
    if not complete:
        raise ConfigError("the study has no completed trial to confirm")
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
                      backend: Backend | None = None) -> int:
    """Create the companion study if need be and plan its runs (`plan_runs`) under its claim lock: two
    `hpsearch confirm` started together would otherwise both read the plan and enqueue a run twice.

    Returns:
        how many runs the plan now holds.
    """
    backend = backend if backend is not None else study_backend(loaded)
    companion = open_companion(loaded, backend, create=True)
    lock = backend.claim_lock(companion.study_name).acquire()
    try:
        return plan_runs(companion, sources, seeds, samples)
    finally:
        lock.release()


def plan_runs(companion: optuna.Study, sources: list[TrialRecord], seeds: int, samples: int) -> int:
    """Enqueue every (source, seed index) run not enqueued before; returns how many runs the plan now holds.
    The caller holds the companion's claim lock (`plan_confirmation`).

    Raises:
        ConfigError: earlier runs of this study were measured with another number of samples.
    """
    stored = companion.user_attrs.get("samples")
    if stored is not None and stored != samples:
        raise ConfigError(f"samples: this study's confirmation runs were measured with {stored} samples; "
                          f"confirm with the same number so that all runs are comparable (got {samples})")
    companion.set_user_attr("samples", samples)
    planned = {tuple(p) for p in companion.user_attrs.get("planned", [])}
    for source in sources:
        for index in range(seeds):
            if (source.number, index) not in planned:
                companion.enqueue_trial({"source": source.number, "seed_index": index}, skip_if_exists=True)
                planned.add((source.number, index))
    companion.set_user_attr("planned", sorted([list(p) for p in planned]))
    return len(planned)


def planned_runs(companion: optuna.Study) -> int:
    return len(companion.user_attrs.get("planned", []))


def run_seeds(source_seed: int, index: int) -> tuple[int, int]:
    """The fresh training seed of run `index` of a configuration, and its (different) evaluation seed."""
    train = (source_seed + (index + 1) * SEED_STRIDE) % MAX_SEED
    return train, (train + 1) % MAX_SEED


class ConfirmObjective:
    """Trains one (source, seed index) run and returns its independently measured value.

    Args:
        loaded: the search's study file.
        sources: the search's trials by number (their configs are retrained).
        dataset, device, cache_dir, store: as for the search's objective.
        samples: generated images of the independent measurement.
    """

    def __init__(self, loaded: LoadedStudy, sources: Mapping[int, TrialRecord], dataset: ImageDataset,
                 device: torch.device, cache_dir: Path, store: FileSystemArtifactStore, samples: int) -> None:
        self.loaded, self.sources, self.dataset, self.device = loaded, sources, dataset, device
        self.cache_dir, self.store, self.samples = cache_dir, store, samples
        self.on_start: Callable[[], None] = lambda: None
        self.stop: Callable[[], bool] | None = None
        self.current: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        self.current = trial.number
        source_number = trial.suggest_int("source", 0, _MAX_SOURCE)
        index = trial.suggest_int("seed_index", 0, _MAX_SEEDS)
        source = self.sources.get(source_number)
        if source is None or source.config is None:  # not an enqueued run (a worker raced past the plan)
            raise ConfigError(f"confirmation run of trial {source_number}: no such completed trial in the search")
        train_seed, eval_seed = run_seeds(source.seed or 0, index)
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
    """

    objective: str
    ranking: list[Ranked]
    effects: dict[str, list[Ranked]]
    sources: dict[str, TrialRecord]
    done: int
    planned: int
    samples: int
    collapsed: dict[str, int] = field(default_factory=dict)

    @property
    def winner(self) -> TrialRecord:
        """The search trial of the configuration with the lowest confirmed mean (needs a ranking)."""
        return self.sources[self.ranking[0].name]

    def sentences(self) -> list[str]:
        """One finding per configuration, worded from the numbers."""
        return [sentence(r, self.ranking[0], self.objective) + self.collapse_note(r.name) for r in self.ranking]

    def collapse_note(self, name: str) -> str:
        """" — COLLAPSED in k of n runs" for a configuration whose generators collapsed; else empty."""
        k = self.collapsed.get(name, 0)
        if not k:
            return ""
        n = next(r.summary.n for r in self.ranking if r.name == name)
        return (f" — COLLAPSED in {k} of {n} runs (within-class MS-SSIM above the real images' by more than the "
                "margin): not a usable winner whatever its value")


def confirmation(loaded: LoadedStudy, search: optuna.Study) -> Confirmation | None:
    """The study's confirmation runs, ranked; None when it has none planned."""
    try:
        companion = open_companion(loaded)
    except ConfigError:
        return None
    records = {t.number: t for t in read_trials(search)}
    runs = companion.get_trials(deepcopy=False)
    complete = [read_trial(r) for r in runs if r.state == TrialState.COMPLETE and r.value is not None
                and int(r.params["source"]) in records]
    confirmed = [(records[int(r.params["source"])], r.objective_value) for r in complete]
    by_config: dict[str, list[float]] = {}
    collapsed: dict[str, int] = {}
    for run, (source, value) in zip(complete, confirmed, strict=True):
        by_config.setdefault(describe(source), []).append(value)
        if (run.measured or {}).get("collapse") is True:
            collapsed[describe(source)] = collapsed.get(describe(source), 0) + 1
    return Confirmation(loaded.cfg.objective, rank(by_config) if by_config else [], _effects(confirmed),
                        {describe(source): source for source, _ in confirmed},
                        sum(r.state == TrialState.COMPLETE for r in runs), planned_runs(companion),
                        int(companion.user_attrs.get("samples", 0)), collapsed)


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


