"""One confirmation run: a source trial's configuration retrained with run i's paired seeds, its kept generator
measured again on another batch."""


from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from hpsearch.checkpoint import BEST_GENERATOR
from hpsearch.config import MAX_SEED, from_dict, replace_sections
from hpsearch.data import ImageDataset
from hpsearch.devices import device_label
from hpsearch.errors import ConfigError
from hpsearch.runner import remeasure, run_training
from hpsearch.search.artifacts import upload_run
from hpsearch.search.confirm.companion import MAX_SEED_INDEX, MAX_SOURCE
from hpsearch.search.objective import trial_run_dir
from hpsearch.search.record import TrialRecord, TrialWriter, read_trial
from hpsearch.search.storage import storage_seconds
from hpsearch.search.study_file import LoadedStudy
from hpsearch.seeds import derived_seed


def run_seeds(base_seed: int, index: int) -> tuple[int, int]:
    """The fresh training seed of run `index` of every configuration, and its (different) evaluation seed.

    From the study's base seed, not the source trial's: run i of every candidate must use the same
    seeds (paired), also in a study that searched the seed."""
    train = derived_seed(base_seed, index + 1, "confirm")
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
        source_number = trial.suggest_int("source", 0, MAX_SOURCE)
        index = trial.suggest_int("seed_index", 0, MAX_SEED_INDEX)
        source = self.sources.get(source_number)
        if source is None or source.config is None:  # not an enqueued run (a worker raced past the plan)
            raise ConfigError(f"confirmation run of trial {source_number}: no such completed trial in the search")
        train_seed, eval_seed = run_seeds(self.loaded.base_config.train.seed, index)
        cfg = replace_sections(from_dict(source.config, f"trial {source_number} config"), train={"seed": train_seed})
        objective, record = self.loaded.cfg.objective, TrialWriter(trial)
        run_dir, retry = trial_run_dir(self.loaded.runs_dir / "confirm", trial)
        record.start(cfg, str(run_dir.resolve()), device_label(self.device), objective)
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


def source_records(search: optuna.Study) -> dict[int, TrialRecord]:
    return {t.number: read_trial(t) for t in search.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}
