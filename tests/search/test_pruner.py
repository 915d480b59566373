"""The pruners a study file describes: where pruning may start (`min_steps`, the median warm-up)."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.search.study import PrunerConfig, make_pruner
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
