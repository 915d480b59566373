"""Opening a study: its storage, sampler and pruner, created with its enqueued trials, or guarded against change."""

from __future__ import annotations

import warnings

import optuna

from hpsearch.config import from_dict
from hpsearch.errors import ConfigError
from hpsearch.search.artifacts import ARTIFACTS_KEY
from hpsearch.search.backend import Backend, open_backend
from hpsearch.search.pruners import make_pruner
from hpsearch.search.samplers import make_sampler
from hpsearch.search.study_file import LoadedStudy


def study_backend(loaded: LoadedStudy, retry: bool = True, must_exist: bool = False) -> Backend:
    """The study's storage backend, with heartbeats and (when `retry`) the retry of stale trials."""
    return open_backend(loaded.storage, loaded.cfg.heartbeat_s, loaded.cfg.max_retry if retry else None,
                        must_exist)


def make_storage(loaded: LoadedStudy, retry: bool = True, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """The study's Optuna storage (see `study_backend`)."""
    return study_backend(loaded, retry, must_exist).storage


def open_study(loaded: LoadedStudy, create: bool = False, backend: Backend | None = None) -> optuna.Study:
    """Load the study (creating it and its enqueued trials when `create`).

    A stored study remembers its space fingerprint and objective; resuming with another
    space or objective is refused instead of mixing incomparable trials. Creating holds the
    study's claim lock from `create_study` to the last enqueued trial, so that workers that
    start together neither enqueue twice nor read a study another one is still writing.

    Args:
        backend: the storage to use (a worker opens it once for the study, the claim lock
            and heartbeats); by default the study file's, opened here.
    """
    if backend is None:
        backend = study_backend(loaded, must_exist=not create)
    base = loaded.base_config.train
    kwargs = {"study_name": loaded.cfg.study, "storage": backend.storage, "sampler": make_sampler(loaded.cfg.sampler),
              "pruner": make_pruner(loaded.cfg.pruner, base.steps, base.eval_every)}
    if not create:
        try:
            study = optuna.load_study(**kwargs)  # type: ignore[arg-type]
        except KeyError as exc:
            raise ConfigError(f"study {loaded.cfg.study!r} not found in {loaded.storage.masked}; "
                              "create it with `hpsearch run`") from exc
        _check_unchanged(loaded, study)
        return study
    lock = backend.claim_lock(loaded.cfg.study).acquire()
    try:
        study = optuna.create_study(direction="minimize", load_if_exists=True, **kwargs)  # type: ignore[arg-type]
        if all(study.user_attrs.get(k) is None for k in _expected(loaded)):
            # Enqueued first (safe to repeat), the attributes that say "created" last: a start killed in
            # between is completed by the next one instead of leaving the enqueued trials out.
            for params in loaded.cfg.enqueue:
                study.enqueue_trial(params, skip_if_exists=True)
            for key, value in _expected(loaded).items():
                study.set_user_attr(key, value)
        if ARTIFACTS_KEY not in study.user_attrs:
            study.set_user_attr(ARTIFACTS_KEY, str(loaded.artifacts_dir.resolve()))
    finally:
        lock.release()
    _check_unchanged(loaded, study)
    return study


def snapshot(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of the study as it is now: its trials and attributes read once.

    A report or summary built from it shows one moment, even while workers keep writing (read
    piece by piece, a report said "1 finished trial" beside an importance warning counting 2).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    copy.add_trials(study.get_trials(deepcopy=True))
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    return copy


def _expected(loaded: LoadedStudy) -> dict[str, object]:
    """What a study stores about itself when created, and is compared with when reopened."""
    return {"space_fingerprint": loaded.space.fingerprint, "objective": loaded.cfg.objective,
            "base": loaded.base_config.to_dict()}


def _check_unchanged(loaded: LoadedStudy, study: optuna.Study) -> None:
    """Refuse a stored study whose space, objective or base config differ from the study file's.

    A study created before these attributes existed (none stored) passes.

    Raises:
        ConfigError: naming what differs.
    """
    expected = _expected(loaded)
    stored = {k: study.user_attrs.get(k) for k in expected}
    if all(v is None for v in stored.values()):
        return
    changed = [k for k in expected if stored[k] != expected[k]
               and not (k == "base" and _same_base(stored[k], expected[k]))]
    if changed:
        raise ConfigError(f"{loaded.path}: study {loaded.cfg.study!r} exists in {loaded.storage.masked} "
                          f"with a different {', '.join(changed)}; use a new study name to search a changed "
                          "space, objective or base config")


def _same_base(stored: object, expected: object) -> bool:
    """A base config stored by an older release equals `expected` once the fields it lacked take their defaults
    (a release that adds a config field must not lock users out of their studies)."""
    if not isinstance(stored, dict):
        return False
    try:
        return from_dict(stored, "stored base").to_dict() == expected
    except ConfigError:  # a field this release does not know: a newer or a different config
        return False
