"""The pruners a study file describes: where pruning may start (`min_steps`, the median warm-up), and the
extrapolating pruner's judgement of slow starters and flattened curves."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.search import PrunerConfig, make_pruner
from hpsearch.search.pruners import ExtrapolatingPruner, extrapolate
from tests.search.helpers import write_study

STEPS, EVAL_EVERY = 1500, 250


def _first_prune_steps(cfg: PrunerConfig, n_trials: int = 30) -> list[int]:
    """Run trials that report random values at every evaluation; the steps at which they were pruned."""
    study = optuna.create_study(study_name=f"pruner-{cfg.name}-{cfg.min_steps}", direction="minimize",
                                pruner=make_pruner(cfg, STEPS, EVAL_EVERY))
    rng = random.Random(0)
    pruned_at = []
    for _ in range(n_trials):
        trial, values = study.ask(), []
        for step in range(EVAL_EVERY, STEPS + 1, EVAL_EVERY):
            values.append(rng.uniform(0, 100))
            trial.report(values[-1], step)
            if trial.should_prune():
                pruned_at.append(step)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, min(values))
    return pruned_at


@pytest.mark.parametrize(("cfg", "earliest"), [
    (PrunerConfig(name="hyperband"), 250),  # the first evaluation
    (PrunerConfig(name="hyperband", min_steps=600), 750),  # the first evaluation at or after 600
    (PrunerConfig(name="hyperband", min_steps=750), 750),
    (PrunerConfig(name="median", n_startup_trials=2, n_warmup_evals=0), 250),
    (PrunerConfig(name="median", n_startup_trials=2, n_warmup_evals=1), 500),  # one evaluation reported first
    (PrunerConfig(name="median", n_startup_trials=2, n_warmup_evals=1, min_steps=1000), 1000),
    (PrunerConfig(name="extrapolate", n_startup_trials=1), 500),  # it needs two evaluations
    (PrunerConfig(name="extrapolate", n_startup_trials=1, min_steps=600), 750),
])
def test_no_trial_is_pruned_before_min_steps(cfg: PrunerConfig, earliest: int) -> None:
    pruned_at = _first_prune_steps(cfg)
    assert pruned_at, "random values should get some trials pruned"
    assert min(pruned_at) == earliest


def test_no_pruner_never_prunes() -> None:
    assert _first_prune_steps(PrunerConfig(name="none")) == []


def test_min_steps_at_or_past_training_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The tiny study trains 60 steps: a min_steps of 60 would leave nothing to prune.
    path = write_study(tmp_path, pruner={"name": "hyperband", "min_steps": 60})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pruner.min_steps: must be below base train.steps (60)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study.db").exists()
    path = write_study(tmp_path, pruner={"name": "hyperband", "min_steps": -1})
    assert main(["run", str(path)]) == 2
    assert "min_steps" in capsys.readouterr().err


def test_extrapolate_continues_the_rate_of_the_last_two_evaluations() -> None:
    # halved over the last 500 steps: 25 after 500 more
    assert extrapolate([(250, 400.0), (500, 100.0), (1000, 50.0)], 1500) == pytest.approx(25.0)
    assert extrapolate([(500, 100.0), (750, 50.0)], 1500) == pytest.approx(50 / 8)
    assert extrapolate([(500, 40.0), (1000, 45.0)], 1500) == 40.0  # rose: its best so far
    assert extrapolate([(500, 40.0), (1000, 40.0)], 1500) == 40.0
    assert extrapolate([(500, 0.0), (1000, 0.0)], 1500) == 0.0


def _trial_with(study: optuna.Study, curve: list[float]) -> tuple[optuna.Trial, list[bool]]:
    """Report `curve` at steps 250, 500, ...; the pruner's verdict after each report."""
    trial, verdicts = study.ask(), []
    for i, value in enumerate(curve):
        trial.report(value, EVAL_EVERY * (i + 1))
        verdicts.append(trial.should_prune())
    return trial, verdicts


def test_extrapolating_pruner_keeps_a_slow_starter_and_stops_a_flattened_curve() -> None:
    study = optuna.create_study(direction="minimize", pruner=ExtrapolatingPruner(STEPS, min_step=500))
    _, verdicts = _trial_with(study, [900.0, 200.0])
    assert verdicts == [False, False]  # nothing finished yet: no incumbent to lose to
    study.tell(study.ask(), 20.0)  # the incumbent
    # A slow starter, 900 then 200, falling as s^-2.2: about 18 at step 1500, so it may still win;
    # Hyperband and the median pruner, ranking by the value at step 500, would stop it first.
    _, verdicts = _trial_with(study, [900.0, 200.0])
    assert verdicts == [False, False]
    # A fast starter that has flattened, 60 then 55: about 49 at best, it cannot beat 20.
    _, verdicts = _trial_with(study, [60.0, 55.0])
    assert verdicts == [False, True]  # not at step 250 (one evaluation), pruned at 500
    # The last step is never pruned: the trial has cost everything already.
    _, verdicts = _trial_with(study, [60.0, 55.0, 54.0, 53.0, 52.0, 51.0])
    assert verdicts[-1] is False


def test_extrapolating_pruner_waits_for_min_step_and_its_startup_trials() -> None:
    study = optuna.create_study(direction="minimize", pruner=ExtrapolatingPruner(STEPS, min_step=1000,
                                                                                  n_startup_trials=2))
    study.tell(study.ask(), 1.0)
    _, verdicts = _trial_with(study, [99.0, 98.0, 97.0, 96.0])
    assert verdicts == [False] * 4  # one finished trial of the two required
    study.tell(study.ask(), 1.0)
    _, verdicts = _trial_with(study, [99.0, 98.0, 97.0, 96.0])
    assert verdicts == [False, False, False, True]  # step 1000 is the first it may prune at
    with pytest.raises(ValueError, match="minimized"):
        _trial_with(optuna.create_study(direction="maximize", pruner=ExtrapolatingPruner(STEPS)), [1.0, 2.0])
