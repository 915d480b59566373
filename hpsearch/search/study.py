"""Study configs (YAML), and the storage, sampler and pruner they describe."""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hpsearch.config import MAX_SEED, MAX_STEPS, RunConfig, build_dataclass, from_dict, num_blocks, option, read_yaml
from hpsearch.errors import ConfigError
from hpsearch.io import check_writable
from hpsearch.search.pruners import ExtrapolatingPruner
from hpsearch.search.space import SearchSpace, load_space
from hpsearch.search.storage import (
    GRPC_SCHEME,
    ReconnectingRDBStorage,
    call_with_deadline,
    connect_timeout_s,
    engine_kwargs,
    mask_url,
    redact,
    retry_on_disconnect,
)

STARTUP_RETRY_DELAYS_S = (0.5, 1.0, 2.0)
SUPPORTED_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg2")

_logger = logging.getLogger(__name__)
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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
        objective: `class_fid` (the paper's) or `fid`, minimized.
        base: run config sections (data, model, train, metrics) every trial starts from.
        sampler, pruner, stop: the search.
        storage: database URL (default sqlite:///runs/<study>/study.db).
        artifacts: artifact folder shared by workers (default runs/<study>/artifacts).
        runs_dir: per-trial run folders (default runs/<study>/trials).
        heartbeat_s: worker heartbeat; a trial silent for 2× this is failed and retried.
        max_retry: retries of a trial whose worker died.
        enqueue: parameter sets to try first, e.g. the paper's best configuration.
    """

    study: str = ""
    space: str = ""
    objective: Literal["class_fid", "fid"] = "class_fid"
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


@dataclass
class LoadedStudy:
    """A validated study file with its space and base run config."""

    path: Path
    cfg: StudyConfig
    space: SearchSpace
    base: RunConfig

    @property
    def n_blocks(self) -> int:
        return num_blocks(self.base.data.image_size)

    @property
    def storage_url(self) -> str:
        return self.cfg.storage or f"sqlite:///runs/{self.cfg.study}/study.db"

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.cfg.artifacts or f"runs/{self.cfg.study}/artifacts")

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
    cfg: StudyConfig = build_dataclass(StudyConfig, raw, str(path))
    if not STUDY_NAME.match(cfg.study):
        raise ConfigError(f"{path}: study: must be 1-100 letters, digits, '_', '.', '-' (not starting with "
                          f"'.' or '-'); got {cfg.study!r}")
    if not cfg.space:
        raise ConfigError(f"{path}: space: required (a search-space YAML, relative to the study file)")
    if storage:
        cfg.storage = storage
    base = from_dict(cfg.base, f"{path}: base")
    if cfg.pruner.name != "none" and cfg.pruner.min_steps >= base.train.steps:
        raise ConfigError(f"{path}: pruner.min_steps: must be below base train.steps ({base.train.steps}), or "
                          f"no trial could be pruned; got {cfg.pruner.min_steps}")
    space = load_space(path.parent / cfg.space)
    space.check(cfg.base, num_blocks(base.data.image_size))
    for i, params in enumerate(cfg.enqueue):
        _check_enqueued(space, cfg.base, num_blocks(base.data.image_size), params, f"{path}: enqueue[{i}]")
    return LoadedStudy(path, cfg, space, base)


def _check_enqueued(space: SearchSpace, base: dict[str, Any], n_blocks: int, params: dict[str, Any],
                    where: str) -> None:
    try:
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: must be a mapping of parameter names to values; got {params!r}")
        space.suggest(optuna.trial.FixedTrial(params), base, n_blocks, source="")  # type: ignore[arg-type]
    except ValueError as exc:  # FixedTrial: a parameter the space needs is missing
        raise ConfigError(f"{where}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix(': ')}") from exc


def make_sampler(cfg: SamplerConfig) -> optuna.samplers.BaseSampler:
    """The configured sampler (TPE options are passed explicitly: Optuna 5 changed defaults)."""
    if cfg.name == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    if cfg.name == "gp":
        return optuna.samplers.GPSampler(seed=cfg.seed, n_startup_trials=cfg.n_startup_trials)
    with warnings.catch_warnings():  # `group` is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(n_startup_trials=cfg.n_startup_trials, multivariate=cfg.multivariate,
                                          group=cfg.group and cfg.multivariate, constant_liar=cfg.constant_liar,
                                          seed=cfg.seed)


def make_pruner(cfg: PrunerConfig, train_steps: int, eval_every: int) -> optuna.pruners.BasePruner:
    """Hyperband's resource is the training step at which a trial reports (one per evaluation).

    Its smallest rung is the first evaluation at or after `min_steps`, so a rung always falls
    on a step at which trials report.
    """
    if cfg.name == "none":
        return optuna.pruners.NopPruner()
    first = min(eval_every * max(1, math.ceil(cfg.min_steps / eval_every)), train_steps)
    if cfg.name == "extrapolate":
        return ExtrapolatingPruner(train_steps, first, cfg.n_startup_trials)
    if cfg.name == "median":  # the earliest step Optuna's median pruner may prune at is n_warmup_steps
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials,
                                           n_warmup_steps=max((cfg.n_warmup_evals + 1) * eval_every, first))
    return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=train_steps,
                                          reduction_factor=cfg.reduction_factor)


def make_storage(loaded: LoadedStudy, retry: bool = True, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """The study's storage, with heartbeats and (when `retry`) the retry of stale trials."""
    return connect_storage(loaded.storage_url, loaded.cfg.heartbeat_s, loaded.cfg.max_retry if retry else None,
                           must_exist)


def connect_storage(url: str, heartbeat_s: int | None = None, max_retry: int | None = None,
                    must_exist: bool = False) -> optuna.storages.BaseStorage:
    """RDB storage, the same code for SQLite and PostgreSQL; or the client of an `hpsearch storage-proxy`.

    The URL is checked, and a database server must answer a first connection within
    `connect_timeout_s()` seconds, before any storage object (or SQLite file) is made: a
    wrong URL, an unknown database or role, a refused or silent server are one ConfigError
    at once, not retried and never a hang.

    Args:
        url: SQLAlchemy URL, or grpc://HOST:PORT for a storage proxy (whose heartbeat settings apply).
        heartbeat_s: worker heartbeat (None for readers such as the dashboard and reports).
        max_retry: retries of a trial whose heartbeat went stale (None: no retry callback).
        must_exist: refuse to create a new SQLite file (readers of an existing study).

    Raises:
        ConfigError: the URL is not supported or the database cannot be reached (the URL is
            shown with its password masked).
    """
    if url.startswith(GRPC_SCHEME):
        from hpsearch.search.proxy import storage_for  # grpcio is an optional dependency

        return storage_for(url, heartbeat_s, max_retry)
    check_storage_url(url, must_exist)
    options = engine_kwargs(url)
    if not url.startswith("sqlite"):
        _probe(url, options)
    try:
        with warnings.catch_warnings():  # heartbeats and their retry callback are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Optuna 5: the stale-trial callback replaces the deprecated RetryFailedTrialCallback.
            callback = (optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                        if max_retry is not None and heartbeat_s else None)
            # A connection dropped just after the probe is retried briefly.
            connect = retry_on_disconnect(ReconnectingRDBStorage, "opening the storage", STARTUP_RETRY_DELAYS_S)
            return connect(url, engine_kwargs=options, heartbeat_interval=heartbeat_s,
                           grace_period=2 * heartbeat_s if heartbeat_s else None,
                           heartbeat_stale_trial_callback=callback)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise _cannot_open(url, exc) from exc


def check_storage_url(url: str, must_exist: bool = False) -> None:
    """A storage URL hpsearch can use: sqlite:///FILE or postgresql[+psycopg2]://…, with a usable SQLite path.

    Raises:
        ConfigError: naming the (masked) URL, what is wrong and what is allowed.
    """
    allowed = "sqlite:///PATH, postgresql+psycopg2://USER@HOST:PORT/DB or grpc://HOST:PORT (a storage proxy)"
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError, or ValueError for a bad port
        raise ConfigError(f"storage {mask_url(url)}: not a database URL; use {allowed}") from exc
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(f"storage {mask_url(url)}: database {parsed.drivername!r} is not supported; use {allowed}")
    if parsed.drivername != "sqlite":
        return
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise ConfigError(f"storage {mask_url(url)}: needs a file (an in-memory database is lost when the "
                          "process ends and workers cannot share it); use sqlite:///runs/NAME/study.db")
    path = Path(parsed.database)
    if must_exist and not path.is_file():
        raise ConfigError(f"storage {url}: no such SQLite file")
    check_writable(path, "storage", is_dir=False)  # SQLite writes a journal beside the file, even to read


def _probe(url: str, options: dict[str, Any]) -> None:
    """Open and close one connection to the server, within the connect timeout (plus a margin)."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=options["connect_args"])
    timeout = connect_timeout_s()
    try:
        call_with_deadline(lambda: engine.connect().close(), timeout + 5, "connecting")
    except TimeoutError as exc:
        raise ConfigError(f"storage {mask_url(url)}: the server did not answer within {timeout} s (a firewall, "
                          "or not a PostgreSQL server?); set $HPSEARCH_CONNECT_TIMEOUT to wait longer") from exc
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise _cannot_open(url, exc) from exc
    finally:
        engine.dispose()


def _cannot_open(url: str, exc: BaseException) -> ConfigError:
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ else exc
    detail = str(getattr(cause, "orig", None) or cause).strip()
    if "timeout expired" in detail:
        detail = f"the server did not answer within {connect_timeout_s()} s"
    first = " ".join(detail.split("\n")[0].split()) or type(cause).__name__
    return ConfigError(f"storage {mask_url(url)}: cannot be opened ({type(cause).__name__}: {redact(first, url)})")


def open_study(loaded: LoadedStudy, create: bool = False) -> optuna.Study:
    """Load the study (creating it and its enqueued trials when `create`).

    A stored study remembers its space fingerprint and objective; resuming with another
    space or objective is refused instead of mixing incomparable trials.
    """
    storage = make_storage(loaded, must_exist=not create)
    base = loaded.base.train
    kwargs = {"study_name": loaded.cfg.study, "storage": storage, "sampler": make_sampler(loaded.cfg.sampler),
              "pruner": make_pruner(loaded.cfg.pruner, base.steps, base.eval_every)}
    if create:
        study = optuna.create_study(direction="minimize", load_if_exists=True, **kwargs)  # type: ignore[arg-type]
    else:
        try:
            study = optuna.load_study(**kwargs)  # type: ignore[arg-type]
        except KeyError as exc:
            raise ConfigError(f"study {loaded.cfg.study!r} not found in {mask_url(loaded.storage_url)}; "
                              "create it with `hpsearch run`") from exc
    expected = {"space_fingerprint": loaded.space.fingerprint, "objective": loaded.cfg.objective,
                "base": loaded.base.to_dict()}
    stored = {k: study.user_attrs.get(k) for k in expected}
    if all(v is None for v in stored.values()):
        for key, value in expected.items():
            study.set_user_attr(key, value)
        for params in loaded.cfg.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    else:
        changed = [k for k in expected if stored[k] != expected[k]]
        if changed:
            raise ConfigError(f"{loaded.path}: study {loaded.cfg.study!r} exists in {mask_url(loaded.storage_url)} "
                              f"with a different {', '.join(changed)}; use a new study name to search a changed "
                              "space, objective or base config")
    return study
