"""TrialRecord: what a trial stores, typed and versioned; one writer (the objective), one reader (everyone else).

A trial's results live in Optuna's user attributes, a string-keyed JSON bag. Only this
module knows the keys: `TrialWriter` writes them as a trial runs, `read_trial` turns a
stored trial into a `TrialRecord`. Status, export, reports and confirmation runs read
trials through it, so a key is renamed or added in one place, and a study written by an
older release (record version 1: the same keys, without a version) still reads.
Stored values are read defensively: a missing or malformed attribute reads as absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import RunConfig
from hpsearch.errors import ConfigError

SCHEMA_VERSION = 2  # 1: releases before the record existed (same keys, no version attribute)
_VERSION = "record_version"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class TrialRecord:
    """One trial as hpsearch reads it.

    Attributes:
        number, state, value, params: Optuna's (value: a complete trial's objective).
        intermediate: objective reported at each evaluation step.
        config: the trial's resolved run config, as a mapping (None before it started).
        run_dir: its run folder (on the worker's machine); device: where it trained.
        objective: the metric it minimizes (`class_fid`, `fid`, `class_kid`, `kid`); steps: its training
            budget; seed: its training seed.
        evals: one mapping per evaluation: step, metrics, losses, gradient norms.
        grids: evaluation step → artifact id of that step's sample grid.
        failure: why it failed or was pruned for a fault (diverged, invalid combination).
        checkpoint_artifact: artifact id of its final checkpoint (for resuming).
        best_artifact, best_step: artifact id and step of the generator of its best evaluation,
            whose value is the trial's (record version 2 on).
        wall_s, storage_s: its wall time, and the part spent in storage calls.
        noise: its kept generator's objective re-measured on batches drawn with other
            evaluation seeds (`noise_seeds`; empty when not measured).
        measured: a confirmation run's independent measurement (every metric).
        collapse: its latest evaluation flagged `collapse`: step, reason, msssim, msssim_real,
            class_density_coverage_max.
        progress_step: the step of its latest evaluation.
        version: the record version it was written with.
    """

    number: int
    state: TrialState
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    run_dir: str | None = None
    device: str | None = None
    objective: str | None = None
    steps: int | None = None
    seed: int | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    grids: dict[int, str] = field(default_factory=dict)
    failure: str | None = None
    checkpoint_artifact: str | None = None
    best_artifact: str | None = None
    best_step: int | None = None
    wall_s: float | None = None
    storage_s: float | None = None
    progress_step: int = 0
    noise: list[float] = field(default_factory=list)
    measured: dict[str, Any] | None = None
    collapse: dict[str, Any] | None = None
    version: int = SCHEMA_VERSION

    @property
    def finished(self) -> bool:
        """Complete or pruned: a model that a reported value describes."""
        return self.state in FINISHED

    @property
    def objective_value(self) -> float:
        """A complete trial's value; a pruned one's best reported value (NaN when it reported none)."""
        if self.state == TrialState.COMPLETE and self.value is not None:
            return self.value
        return min(self.intermediate.values(), default=math.nan)

    @property
    def last_step(self) -> int:
        """How far it trained (the last step it reported at)."""
        return max(self.intermediate, default=0)

    @property
    def family(self) -> str:
        """The generator family of its config (dcgan when unknown)."""
        model = (self.config or {}).get("model", {})
        return str(model.get("generator", "dcgan")) if isinstance(model, Mapping) else "dcgan"

    def best_eval(self, objective: str) -> dict[str, Any]:
        """The evaluation at which the trial reached its best `objective` (empty when none is finite)."""
        evals = [e for e in self.evals if finite(e.get(objective))]
        return min(evals, key=lambda e: e[objective], default={})

    def kept_eval(self, objective: str) -> dict[str, Any]:
        """The evaluation whose generator the trial keeps: at its best step, else its best by `objective`."""
        at_best = [e for e in self.evals if self.best_step is not None and e.get("step") == self.best_step]
        return at_best[-1] if at_best else self.best_eval(objective)

    def kept_collapsed(self, objective: str) -> bool:
        """The generator the trial keeps (and its value describes) was flagged `collapse` when it was chosen."""
        return self.kept_eval(objective).get("collapse") is True

    def latest_grid(self) -> str | None:
        """The artifact id of the sample grid of its last evaluation."""
        return self.grids[max(self.grids)] if self.grids else None

    def best_grid(self) -> str | None:
        """The sample grid of the evaluation whose generator the trial keeps (the last one's for older records)."""
        return self.grids.get(self.best_step) if self.best_step in self.grids else self.latest_grid()


def read_trial(trial: FrozenTrial) -> TrialRecord:
    """The record of a stored trial.

    Raises:
        ConfigError: it was written by a newer hpsearch (a record version this one cannot read).
    """
    attrs = trial.user_attrs
    version = _int(attrs.get(_VERSION)) or 1
    if version > SCHEMA_VERSION:
        raise ConfigError(f"trial {trial.number}: stored with trial record version {version} by a newer hpsearch; "
                          f"this one reads up to version {SCHEMA_VERSION}: upgrade hpsearch")
    grids, evals = attrs.get("grids"), attrs.get("evals")
    return TrialRecord(
        number=trial.number, state=trial.state, value=trial.value, params=dict(trial.params),
        intermediate=dict(trial.intermediate_values),
        config=attrs["config"] if isinstance(attrs.get("config"), dict) else None,
        run_dir=_str(attrs.get("run_dir")), device=_str(attrs.get("device")), objective=_str(attrs.get("objective")),
        steps=_int(attrs.get("steps")), seed=_int(attrs.get("seed")),
        evals=[e for e in evals if isinstance(e, dict)] if isinstance(evals, list) else [],
        grids={int(k): v for k, v in grids.items() if str(k).isdigit() and isinstance(v, str)}
        if isinstance(grids, dict) else {},
        failure=_str(attrs.get("failure")), checkpoint_artifact=_str(attrs.get("checkpoint_artifact")),
        best_artifact=_str(attrs.get("best_artifact")), best_step=_int(attrs.get("best_step")),
        wall_s=_float(attrs.get("wall_s")), storage_s=_float(attrs.get("storage_s")),
        progress_step=_int(attrs.get("progress_step")) or 0,
        noise=[float(v) for v in attrs["noise"] if finite(v)] if isinstance(attrs.get("noise"), list) else [],
        measured=attrs["measured"] if isinstance(attrs.get("measured"), dict) else None,
        collapse=attrs["collapse"] if isinstance(attrs.get("collapse"), dict) else None, version=version)


def read_trials(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of the study, in number order."""
    return [read_trial(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]


class TrialWriter:
    """Writes a running trial's record, piece by piece as it happens (the objective's only way to store results).

    Args:
        trial: the running Optuna trial.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self._evals: list[dict[str, Any]] = []
        self._grids: dict[str, str] = {}

    def start(self, config: RunConfig, run_dir: str, device: str, objective: str) -> None:
        """What the trial trains: its resolved config, folder, device and objective."""
        self._set(**{_VERSION: SCHEMA_VERSION, "config": config.to_dict(), "run_dir": run_dir, "device": device,
                     "seed": config.train.seed, "steps": config.train.steps, "objective": objective})

    def evaluation(self, step: int, values: Mapping[str, Any]) -> None:
        """One evaluation's metrics and losses; the trial's progress."""
        self._evals.append({**values, "step": step})
        self._set(evals=self._evals, progress_step=step)

    def grid(self, step: int, artifact_id: str) -> None:
        """The sample grid drawn at `step`, stored as an artifact."""
        self._grids[str(step)] = artifact_id
        self._set(grids=self._grids)

    def failure(self, reason: str) -> None:
        """Why the trial failed or was pruned for a fault."""
        self._set(failure=reason)

    def timing(self, wall_s: float, storage_s: float) -> None:
        self._set(wall_s=wall_s, storage_s=storage_s)

    def checkpoint(self, artifact_id: str) -> None:
        """The artifact id of the trial's final checkpoint."""
        self._set(checkpoint_artifact=artifact_id)

    def best(self, artifact_id: str, step: int, value: float) -> None:
        """The artifact id of the generator of the trial's best evaluation, its step and value."""
        self._set(best_artifact=artifact_id, best_step=step, best_value=value)

    def collapse(self, step: int, values: Mapping[str, Any]) -> None:
        """An evaluation flagged `collapse` (the latest one is kept; the dashboard shows it): why, and the
        values the two rules read."""
        self._set(collapse={"step": step, "reason": values["collapse_reason"],
                            **{k: values[k] for k in ("msssim", "msssim_real", "class_density_coverage_max")
                               if k in values}})

    def noise(self, values: list[float]) -> None:
        """The kept generator's objective on batches drawn with other evaluation seeds."""
        self._set(noise=values)

    def measurement(self, values: Mapping[str, Any]) -> None:
        """A confirmation run's independent measurement of its kept generator."""
        self._set(measured=dict(values))

    def confirmation(self, source: int, seed_index: int, train_seed: int, eval_seed: int, samples: int) -> None:
        """What a confirmation run retrains (search trial `source`) and how it is measured."""
        self._set(source=source, seed_index=seed_index, train_seed=train_seed, eval_seed=eval_seed, samples=samples)

    def _set(self, **attrs: Any) -> None:
        for key, value in attrs.items():
            self.trial.set_user_attr(key, value)


def finite(value: Any) -> bool:
    """A real number that is not NaN or infinite (stored values may be None or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
