"""The study's sampler, by name: TPE (the paper's Bayesian optimization), random, or a GP for comparison."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

from hpsearch.search.study_file import SamplerConfig


def _tpe(cfg: SamplerConfig) -> optuna.samplers.BaseSampler:
    """TPE with every option passed explicitly: Optuna 5 changed defaults."""
    with warnings.catch_warnings():  # `group` is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(n_startup_trials=cfg.n_startup_trials, multivariate=cfg.multivariate,
                                          group=cfg.group and cfg.multivariate, constant_liar=cfg.constant_liar,
                                          seed=cfg.seed)


SAMPLERS: dict[str, Callable[[SamplerConfig], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": lambda cfg: optuna.samplers.RandomSampler(seed=cfg.seed),
    "gp": lambda cfg: optuna.samplers.GPSampler(seed=cfg.seed, n_startup_trials=cfg.n_startup_trials),
}


def make_sampler(cfg: SamplerConfig) -> optuna.samplers.BaseSampler:
    """The configured sampler (`sampler.name` is one of SAMPLERS: the study file's type allows no other, and a
    test keeps the two the same)."""
    return SAMPLERS[cfg.name](cfg)
