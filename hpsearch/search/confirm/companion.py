"""The companion study `<study>.confirm` that holds the confirmation runs: its name, opening it, its stored
attributes (the plan, the samples, a race's settings) read and checked, and runs enqueued once."""


from __future__ import annotations

import optuna

from hpsearch.errors import ConfigError
from hpsearch.racing import RaceSettings
from hpsearch.search.backend import Backend
from hpsearch.search.study import make_storage
from hpsearch.search.study_file import LoadedStudy

SUFFIX = ".confirm"
MAX_SOURCE, MAX_SEED_INDEX = 10_000_000, 10_000  # the ranges of the two parameters that name a run


RACE_ATTR = "race"


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


def existing_companion(loaded: LoadedStudy, backend: Backend | None = None) -> optuna.Study | None:
    """The companion study, its stored attributes checked (`check_companion`); None when there is none yet."""
    try:
        companion = open_companion(loaded, backend)
    except ConfigError:
        return None
    check_companion(companion)
    return companion


def check_companion(companion: optuna.Study) -> None:
    """The attributes hpsearch stores in a companion study are as it wrote them: a hand-edited or damaged
    one is refused with what is allowed, before it can crash a worker or a report.

    Raises:
        ConfigError: naming the attribute, what it holds and what is allowed.
    """
    attrs = companion.user_attrs
    samples = attrs.get("samples")
    if "samples" in attrs and not (type(samples) is int and samples >= 1):
        raise damaged(companion, "samples", samples, "a positive number of images")
    planned = attrs.get("planned", [])
    if not isinstance(planned, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(type(v) is int and v >= 0 for v in p) for p in planned):
        raise damaged(companion, "planned", planned, "a list of [source trial, seed index] pairs")
    race_settings(companion)


def damaged(companion: optuna.Study, attr: str, value: object, allowed: str) -> ConfigError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConfigError(f"study {companion.study_name!r}: its stored {attr!r} attribute is not one hpsearch wrote "
                       f"(got {shown}; allowed: {allowed}); confirm in a study of its own")


def enqueue_runs(companion: optuna.Study, runs: list[tuple[int, int]]) -> None:
    """Enqueue each (source, seed index) run that was never planned, and record the plan."""
    planned = {tuple(p) for p in companion.user_attrs.get("planned", [])}
    for run in runs:
        if run not in planned:
            companion.enqueue_trial({"source": run[0], "seed_index": run[1]}, skip_if_exists=True)
            planned.add(run)
    companion.set_user_attr("planned", sorted([list(p) for p in planned]))


def planned_runs(companion: optuna.Study) -> int:
    return len(companion.user_attrs.get("planned", []))


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
                type(c) is not int or not 0 <= c <= MAX_SOURCE for c in numbers):
            raise ValueError
        settings = RaceSettings(**raw)
        if settings.budget is not None and settings.budget < len(numbers) * settings.first:
            raise ValueError
    except (KeyError, TypeError, ValueError) as exc:
        raise damaged(companion, RACE_ATTR, stored, allowed) from exc
    return settings, list(numbers)
