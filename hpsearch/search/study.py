"""Opening a study: its storage, sampler and pruner, created with its enqueued trials, or guarded against change."""

from __future__ import annotations

from pathlib import Path

import optuna

from hpsearch.config import from_dict
from hpsearch.errors import ConfigError
from hpsearch.search.backend import Backend, open_backend
from hpsearch.search.config import LoadedStudy
from hpsearch.search.connection import mask_url
from hpsearch.search.pruners import make_pruner
from hpsearch.search.samplers import make_sampler

ARTIFACTS_KEY = "artifacts_dir"  # study attribute: the artifact folder's absolute path at creation


def study_backend(loaded: LoadedStudy, retry: bool = True, must_exist: bool = False) -> Backend:
    """The study's storage backend, with heartbeats and (when `retry`) the retry of stale trials."""
    return open_backend(loaded.storage_url, loaded.cfg.heartbeat_s, loaded.cfg.max_retry if retry else None,
                        must_exist)


def make_storage(loaded: LoadedStudy, retry: bool = True, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """The study's Optuna storage (see `study_backend`)."""
    return study_backend(loaded, retry, must_exist).storage


def open_study(loaded: LoadedStudy, create: bool = False, backend: Backend | None = None) -> optuna.Study:
    """Load the study (creating it and its enqueued trials when `create`).

    A stored study remembers its space fingerprint and objective; resuming with another
    space or objective is refused instead of mixing incomparable trials.

    Args:
        backend: the storage to use (a worker opens it once for the study, the claim lock
            and heartbeats); by default the study file's, opened here.
    """
    storage = backend.storage if backend is not None else make_storage(loaded, must_exist=not create)
    base = loaded.base_config.train
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
                "base": loaded.base_config.to_dict()}
    stored = {k: study.user_attrs.get(k) for k in expected}
    if all(v is None for v in stored.values()):
        for key, value in expected.items():
            study.set_user_attr(key, value)
        for params in loaded.cfg.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    if create and ARTIFACTS_KEY not in study.user_attrs:
        study.set_user_attr(ARTIFACTS_KEY, str(loaded.artifacts_dir.resolve()))
    else:
        changed = [k for k in expected if stored[k] != expected[k] and not (k == "base" and _same_base(stored[k],
                                                                                                       expected[k]))]
        if changed:
            raise ConfigError(f"{loaded.path}: study {loaded.cfg.study!r} exists in {mask_url(loaded.storage_url)} "
                              f"with a different {', '.join(changed)}; use a new study name to search a changed "
                              "space, objective or base config")
    return study


def _same_base(stored: object, expected: object) -> bool:
    """A base config stored by an older release equals `expected` once the fields it lacked take their defaults
    (a release that adds a config field must not lock users out of their studies)."""
    if not isinstance(stored, dict):
        return False
    try:
        return from_dict(stored, "stored base").to_dict() == expected
    except ConfigError:  # a field this release does not know: a newer or a different config
        return False


def artifacts_dir(loaded: LoadedStudy, study: optuna.Study) -> Path:
    """The study's artifact folder: as configured when it exists from here, else the absolute path recorded
    when the study was created (a relative `artifacts` is relative to the folder the workers ran in, so a
    report, export or dashboard run from elsewhere finds the grids and checkpoints all the same)."""
    configured = loaded.artifacts_dir
    stored = study.user_attrs.get(ARTIFACTS_KEY)
    if configured.is_dir() or not isinstance(stored, str) or not Path(stored).is_dir():
        return configured
    return Path(stored)
