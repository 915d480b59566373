"""Study files: the typed sections of a study YAML, and loading one with its space and base run config."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna

from hpsearch.config import MAX_SEED, MAX_STEPS, ObjectiveName, RunConfig, from_dict, num_blocks
from hpsearch.errors import ConfigError
from hpsearch.io import check_text, read_yaml
from hpsearch.redaction import remember_secrets
from hpsearch.search.space import SearchSpace, load_space
from hpsearch.search.storage_url import StorageURL
from hpsearch.validation import build_dataclass, option

STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # fullmatch: "$" would let a final newline in


@dataclass
class SamplerConfig:
    """TPE (the paper's Bayesian optimization), random, or GP for comparison."""

    name: Literal["tpe", "random", "gp"] = "tpe"
    n_startup_trials: int = option(8, ge=0, le=1_000_000)
    multivariate: bool = True
    group: bool = True  # needed for multivariate TPE on a conditional space
    constant_liar: bool = True  # parallel workers do not all sample the same point
    seed: int | None = option(None, ge=0, le=MAX_SEED)


@dataclass
class PrunerConfig:
    """Hyperband over training steps (min/max resource from the evaluation schedule), median,
    extrapolate (`hpsearch.search.pruners.ExtrapolatingPruner`), or none.

    Attributes:
        min_steps: no trial is pruned before it has trained this many steps (Hyperband's
            smallest rung; for the median pruner, a floor on its warm-up). Early FID is a poor
            judge of designs that start slowly, such as hidden-concat discriminators; 0 lets
            the first evaluation decide.
        n_startup_trials: median, extrapolate: trials that must finish before pruning starts.
    """

    name: Literal["hyperband", "median", "extrapolate", "none"] = "hyperband"
    reduction_factor: int = option(3, ge=2, le=1000)
    n_startup_trials: int = option(4, ge=0, le=1_000_000)
    n_warmup_evals: int = option(1, ge=0, le=1_000_000)  # median: evaluations a trial reports before it can be pruned
    min_steps: int = option(0, ge=0, le=MAX_STEPS)


@dataclass
class StopConfig:
    """When the study is done: a number of finished trials, a time, or both (first reached)."""

    n_trials: int | None = option(20, ge=1, le=10_000_000)
    timeout_s: float | None = option(None, gt=0, le=1e9)


@dataclass
class StudyConfig:
    """A study file.

    Attributes:
        study: the study's name in the storage.
        space: search-space YAML, relative to the study file.
        objective: `class_fid` (the paper's), `fid`, `class_kid` or `kid`, minimized.
        base: run config sections (data, model, train, metrics) every trial starts from.
        sampler, pruner, stop: the search.
        storage: database URL (default sqlite:///runs/<study>/study.db).
        artifacts: artifact folder shared by workers (default runs/<study>/artifacts).
        runs_dir: per-trial run folders (default runs/<study>/trials).
        heartbeat_s: worker heartbeat; a trial silent for 2× this is failed and retried.
        max_retry: retries of a trial whose worker died.
        enqueue: parameter sets to try first, e.g. the paper's best configuration.
        collapse: what an evaluation flagged `collapse` (generated within-class MS-SSIM above the
            real data's by `metrics.collapse_margin`) does to its trial: `flag` records it (status,
            report, dashboard and findings show it), `prune` also prunes the trial.
        noise_seeds: each completed trial's kept generator is scored again on this many
            evaluation batches drawn with other seeds: the objective's own noise, which the
            report sets beside the gaps between the top trials (0: not measured).
    """

    study: str = ""
    space: str = ""
    objective: ObjectiveName = "class_fid"
    base: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    storage: str | None = None
    artifacts: str | None = None
    runs_dir: str | None = None
    heartbeat_s: int = option(30, ge=1, le=86_400)
    max_retry: int = option(2, ge=0, le=1000)
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    collapse: Literal["flag", "prune"] = "flag"
    noise_seeds: int = option(3, ge=0, le=100)


@dataclass
class LoadedStudy:
    """A validated study file with its space and base run config.

    Attributes:
        path: the study file.
        cfg: its contents.
        space: the search space it names.
        base_config: its `base` section as a validated run config (every trial starts from it).
        storage: where its trials are stored (`cfg.storage`, --storage or $HPSEARCH_STORAGE, else
            `runs/<study>/study.db`), parsed once here.
    """

    path: Path
    cfg: StudyConfig
    space: SearchSpace
    base_config: RunConfig  # cfg.base (a mapping, as written) validated as a run config
    storage: StorageURL

    @property
    def n_blocks(self) -> int:
        return num_blocks(self.base_config.data.image_size)

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.cfg.artifacts or f"runs/{self.cfg.study}/artifacts")

    def check_each(self, each: Callable[[RunConfig], None]) -> None:
        """Run a check that needs the data (a worker's, once loaded) on the base config and, when the space
        sets any of the fields it reads (`section`-wide: metrics), on every config the space check tries and
        every enqueued trial's: a value the data cannot take then fails before the study starts.

        Raises:
            ConfigError: naming the space or enqueue entry and the value, with `each`'s reason.
        """
        each(self.base_config)
        if not self.space.touches("metrics"):
            return
        self.space.check(self.cfg.base, self.n_blocks, each)
        for i, params in enumerate(self.cfg.enqueue):
            _check_enqueued(self.space, self.cfg.base, self.n_blocks, params, f"{self.path}: enqueue[{i}]", each)

    @property
    def runs_dir(self) -> Path:
        return Path(self.cfg.runs_dir or f"runs/{self.cfg.study}/trials")


def load_study_config(path: str | Path, storage: str | None = None) -> LoadedStudy:
    """Read and check a study YAML (and its space, against the base config).

    Raises:
        ConfigError: naming the file, the key and what is allowed.
    """
    path = Path(path)
    raw = read_yaml(path, "study")
    if isinstance(raw, dict) and raw.get("storage") is not None and not isinstance(raw["storage"], str):
        # Not echoed as other wrong values are: a list or mapping given here may hold a password.
        raise ConfigError(f"{path}: storage: must be a database URL (a string); got a {type(raw['storage']).__name__}")
    cfg: StudyConfig = build_dataclass(StudyConfig, raw, str(path))
    if not STUDY_NAME.fullmatch(cfg.study):
        raise ConfigError(f"{path}: study: must be 1-100 letters, digits, '_', '.', '-' (not starting with "
                          f"'.' or '-'); got {cfg.study!r}")
    if not cfg.space:
        raise ConfigError(f"{path}: space: required (a search-space YAML, relative to the study file)")
    if storage:
        cfg.storage = storage
    if cfg.storage is not None:
        remember_secrets(cfg.storage)
        check_text(cfg.storage, f"{path}: storage", "a database URL", secret=True)
    for key, allowed in (("space", "a search-space YAML"), ("artifacts", "a folder"), ("runs_dir", "a folder")):
        if getattr(cfg, key) is not None:  # "" is not the default folder: it is a mistake
            check_text(getattr(cfg, key), f"{path}: {key}", allowed)
    if cfg.noise_seeds == 1:
        raise ConfigError(f"{path}: noise_seeds: 0 (not measured) or at least 2 (one re-measurement gives no "
                          "spread); got 1")
    base = from_dict(cfg.base, f"{path}: base")
    if cfg.pruner.name != "none" and cfg.pruner.min_steps >= base.train.steps:
        raise ConfigError(f"{path}: pruner.min_steps: must be below base train.steps ({base.train.steps}), or "
                          f"no trial could be pruned; got {cfg.pruner.min_steps}")
    space = load_space(path.parent / cfg.space)
    space.check(cfg.base, num_blocks(base.data.image_size))
    for i, params in enumerate(cfg.enqueue):
        _check_enqueued(space, cfg.base, num_blocks(base.data.image_size), params, f"{path}: enqueue[{i}]")
    url = StorageURL.parse(cfg.storage or f"sqlite:///runs/{cfg.study}/study.db")
    return LoadedStudy(path, cfg, space, base, url)


def _check_enqueued(space: SearchSpace, base: dict[str, Any], n_blocks: int, params: dict[str, Any],
                    where: str, each: Callable[[RunConfig], None] | None = None) -> None:
    """An enqueued parameter set names exactly the parameters its branch of the space draws, each with a
    value of the right type inside its range: otherwise what runs is not what the user enqueued (Optuna
    only warns about a value out of range, truncates 12.5 to 12 for an int and ignores unknown names).

    Raises:
        ConfigError: naming the entry, the parameter, the value and what is allowed.
    """
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: must be a mapping of parameter names to values; got {params!r}")
    trial = _StrictFixedTrial(params)
    try:
        cfg = space.suggest(trial, base, n_blocks, source="")  # type: ignore[arg-type]
        if each is not None:
            each(cfg)
    except ValueError as exc:  # a parameter the space draws is missing, or a value not allowed
        raise ConfigError(f"{where}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix(': ')}") from exc
    unknown = sorted(set(map(str, params)) - set(trial.params))
    if unknown:
        raise ConfigError(f"{where}: {', '.join(map(repr, unknown))} not drawn by the space for this entry "
                          f"(a typo, or a parameter of another branch); its parameters here: {sorted(trial.params)}")


class _StrictFixedTrial(optuna.trial.FixedTrial):
    """A FixedTrial whose values must fit their distributions exactly: type, range, step and choices."""

    def _suggest(self, name: str, distribution: optuna.distributions.BaseDistribution) -> Any:
        if name not in self._params:
            raise ValueError(f"{name}: missing; the space draws it for this entry (its branch needs a value)")
        value = self._params[name]
        problem = _misfit(value, distribution)
        if problem:
            raise ValueError(f"{name}: {problem}; got {value!r}")
        return super()._suggest(name, distribution)


def _misfit(value: Any, distribution: optuna.distributions.BaseDistribution) -> str | None:
    """Why `value` cannot be drawn from `distribution`, or None."""
    dist = distribution
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        if not any(type(value) is type(c) and value == c for c in dist.choices):
            return f"must be one of {list(dist.choices)}"
        return None
    if isinstance(dist, optuna.distributions.IntDistribution):
        if type(value) is not int or not dist.low <= value <= dist.high:  # compared as ints: 10**400 is no float
            return f"must be an integer in {dist.low}..{dist.high}"
        if not dist._contains(float(value)):
            step = f" in steps of {dist.step}" if dist.step != 1 else ""
            return f"must be an integer in {dist.low}..{dist.high}{step}"
        return None
    if isinstance(dist, optuna.distributions.FloatDistribution):
        if type(value) not in (int, float) or not dist.low <= value <= dist.high or not dist._contains(float(value)):
            return f"must be a number in [{dist.low:g}, {dist.high:g}]" + (f" in steps of {dist.step:g}"
                                                                            if dist.step else "")
    return None
