"""Importances say how many trials they rest on, and warn below the evaluator's recommended number."""

from __future__ import annotations

import optuna
import pytest

from hpsearch.reports.figures import importances, recommended_trials


def _study(n: int) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0.1 * t.suggest_float("y", 0, 1), n_trials=n)
    return study


@pytest.mark.parametrize("n", [10, 50])
def test_importances_count_their_trials_and_warn_below_the_recommended_number(n: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fig, warning = importances(_study(n))
    assert fig is not None and fig.layout.title.text.endswith(f"from {n} completed trials")
    assert recommended_trials() == 50  # 5 in PED-ANOVA's default top 10%
    assert (f"rest on {n} completed trials" in warning) == (n < 50) and (warning == "") == (n >= 50)
