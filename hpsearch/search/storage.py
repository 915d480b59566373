"""Optuna's RDB storage that survives a dropped database connection (server restart, idle kill).

SQLAlchemy's pre-ping replaces connections that died while idle in the pool; this adds a
retry with backoff around each storage call, for a connection that dies during the call and
for a server that is briefly down. The storage's calls are single statements or short
transactions (set an attribute, report a value, read trials), so repeating one after the
transaction was rolled back is safe. Creating a trial is the exception: when the connection
drops after the commit but before the answer, a blind retry would create a second trial, so
each creation carries a token in the same transaction and a retry first looks for it
(`create_once`, also used by the storage proxy's client).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.connection import is_disconnect
from hpsearch.search.optuna_private import RDB_PRIVATE_METHODS

_logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
RETRY_DELAYS_S = (0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8)  # about a minute: long enough for a server restart
# The calls hpsearch, its workers, heartbeats and optuna-dashboard make, including the private
# ones Optuna's own caching wrapper (`_CachedStorage`) calls on the RDB storage.
# (`_create_new_trial` is not among them: it retries by token, see `create_once`.)
RETRIED = (*(m for m in RDB_PRIVATE_METHODS if m != "_create_new_trial"), "create_new_study", "get_all_studies",
           "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
           "get_study_system_attrs", "set_study_user_attr", "set_study_system_attr", "get_trial", "get_all_trials",
           "get_n_trials", "get_best_trial", "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id",
           "get_trial_params", "get_trial_param", "get_trial_user_attrs", "get_trial_system_attrs",
           "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
           "set_trial_system_attr", "check_trial_is_updatable", "record_heartbeat")


_main_thread_storage_s = [0.0]  # seconds the main thread spent in storage calls (not the heartbeat thread)
_depth = [0]  # storage calls nest (get_all_trials calls _get_trials): time only the outermost


def storage_seconds() -> float:
    """Seconds this process's main thread has spent in storage calls so far (a trial's share is a difference)."""
    return _main_thread_storage_s[0]


def retry_on_disconnect(func: F, what: str = "", delays: tuple[float, ...] = RETRY_DELAYS_S) -> F:
    """`func`, repeated after each of `delays` while the database is unreachable (then the last error)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return _call(*args, **kwargs)
        start = time.perf_counter()
        _depth[0] += 1
        try:
            return _call(*args, **kwargs)
        finally:
            _depth[0] -= 1
            if _depth[0] == 0:
                _main_thread_storage_s[0] += time.perf_counter() - start

    def _call(*args: Any, **kwargs: Any) -> Any:
        retried = False
        for delay in (*delays, None):
            try:
                return func(*args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retried "finish this trial" whose first attempt committed before the connection
                # dropped: done already, as asked.
                if retried and func.__name__ == "set_trial_state_values" and _finished_as_asked(*args, **kwargs):
                    return True
                raise
            except Exception as exc:  # only a lost connection is retried; anything else is raised as it is
                if delay is None or not is_disconnect(exc):
                    raise
                retried = True
                _logger.warning("storage connection lost in %s (%s); retrying in %s s", what or func.__name__,
                                type(exc.__cause__ or exc).__name__, delay)
                _discard_session(args[0] if args else None)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper  # type: ignore[return-value]


def _discard_session(storage: Any) -> None:
    """Drop this thread's session of an RDB storage, so the retry starts on a fresh connection."""
    scoped = getattr(storage, "scoped_session", None)
    if scoped is not None:
        try:
            scoped.remove()
        except sqlalchemy.exc.SQLAlchemyError:  # closing a dead connection may fail; it is gone anyway
            pass


def _finished_as_asked(storage: optuna.storages.RDBStorage, trial_id: int, state: optuna.trial.TrialState,
                       values: Any = None) -> bool:
    return storage.get_trial(trial_id).state == state


def retry_methods(cls: type, names: tuple[str, ...], where: str = "") -> None:
    """Wrap each named method of `cls` in `retry_on_disconnect` (storages retry through lost connections)."""
    for name in names:
        setattr(cls, name, retry_on_disconnect(getattr(cls, name), f"{name}{where}" if where else ""))


CREATE_TOKEN = "hpsearch:create_token"  # system attribute: which call created the trial
T = TypeVar("T")


def create_once(create: Callable[[FrozenTrial], T], find: Callable[[str], T | None],
                template: FrozenTrial | None, what: str) -> T:
    """`create(template)` retried through lost connections, creating one trial however often it is repeated.

    The template carries a fresh token (a system attribute the database stores with the trial,
    in the same transaction); before each repetition, `find(token)` asks whether an earlier
    attempt committed after all. A template that carries a token already (a proxy's client
    made it) keeps it, so the client can find the trial the proxy created.
    """
    given = template.system_attrs.get(CREATE_TOKEN) if template is not None else None
    token = given if isinstance(given, str) else uuid.uuid4().hex
    marked = _with_token(template, token)
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        if attempts > 1 and (made := find(token)) is not None:
            _logger.warning("%s: the trial had been created before the connection was lost; using it", what)
            return made
        return create(marked)

    attempt.__name__ = what
    return retry_on_disconnect(attempt, what)()


def _with_token(template: FrozenTrial | None, token: str) -> FrozenTrial:
    """The template the trial is created from, marked with `token` (a new running trial when None)."""
    if template is None:
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=dt.datetime.now(),
                               datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
                               intermediate_values={}, trial_id=-1)
    return FrozenTrial(number=template.number, state=template.state, value=None, values=template.values,
                       datetime_start=template.datetime_start, datetime_complete=template.datetime_complete,
                       params=template.params, distributions=template.distributions, user_attrs=template.user_attrs,
                       system_attrs=template.system_attrs | {CREATE_TOKEN: token},
                       intermediate_values=template.intermediate_values, trial_id=template._trial_id)


def find_created(trials: list[FrozenTrial], token: str) -> FrozenTrial | None:
    """The trial whose creation carried `token`, if any."""
    return next((t for t in trials if t.system_attrs.get(CREATE_TOKEN) == token), None)


class ReconnectingRDBStorage(optuna.storages.RDBStorage):
    """RDBStorage whose calls retry through a lost connection (see the module docstring)."""

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        create = super()._create_new_trial
        return create_once(lambda template: create(study_id, template),
                           lambda token: find_created(self.get_all_trials(study_id, deepcopy=False), token),
                           template_trial, "create_new_trial")


retry_methods(ReconnectingRDBStorage, RETRIED)
