"""The study's pruner, by name; and a pruner for learning curves that keep falling, as GAN FID curves do."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.study_file import PrunerConfig


def extrapolate(steps_values: list[tuple[int, float]], last_step: int) -> float:
    """The trial's best value by `last_step`, if its curve keeps falling at the rate of its last two evaluations.

    The rate is taken per step in log space (v(s) = v2 * (v2 / v1) ** ((s - s2) / (s2 - s1))),
    which is optimistic for GAN FID curves: they flatten as they near their floor, so a trial
    is only given up when even this cannot beat the incumbent. (A power law through the same
    two points predicts less, and on digits it gave up a design whose FID plateaued early and
    then fell fastest, the study's best.) A curve that rose or stayed flat is predicted to keep
    its best value so far.

    Args:
        steps_values: the evaluations so far, (step, value) in step order; at least two.
        last_step: the step the trial trains to.
    """
    (s1, v1), (s2, v2) = steps_values[-2:]
    best = min(v for _, v in steps_values)
    if v1 <= 0 or v2 <= 0 or v2 >= v1:
        return best
    return min(best, v2 * (v2 / v1) ** ((last_step - s2) / (s2 - s1)))


class ExtrapolatingPruner(optuna.pruners.BasePruner):
    """Prunes a trial that, extrapolated optimistically, cannot beat the best finished trial.

    Hyperband and the median pruner rank trials by their value at the same step, so a design
    that starts slowly but falls fast (a hidden-concat discriminator, on digits) loses to one
    that starts fast and flattens, and is pruned though it would have won. This pruner asks
    instead whether the trial can still win: it extrapolates the trial's curve to the end of
    training (`extrapolate`) and prunes when that prediction is worse than the best completed
    trial's value. Trials that have flattened above the incumbent are stopped early, trials
    still falling steeply are kept. The first evaluation says little about the last (on digits
    the rank correlation at 1/6 of training was 0.71, at 1/3 0.86-0.94 with the EMA warm-up), so
    give it a `min_step` of about a third of the training. For minimized objectives only (FID).

    Args:
        last_step: the step trials train to (the study's `train.steps`).
        min_step: no trial is pruned before this step, nor before its second evaluation.
        n_startup_trials: completed trials needed before anything is pruned (the incumbent).
    """

    def __init__(self, last_step: int, min_step: int = 0, n_startup_trials: int = 1) -> None:
        self.last_step, self.min_step, self.n_startup_trials = last_step, min_step, max(1, n_startup_trials)

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        if study.direction != optuna.study.StudyDirection.MINIMIZE:
            raise ValueError("ExtrapolatingPruner is for minimized objectives")
        step = trial.last_step
        if step is None or step < self.min_step or step >= self.last_step or len(trial.intermediate_values) < 2:
            return False
        completed = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                     if t.value is not None and math.isfinite(t.value)]
        if len(completed) < self.n_startup_trials:
            return False
        return extrapolate(sorted(trial.intermediate_values.items()), self.last_step) > min(completed)


# name → pruner, given the config, the last training step and the first step a trial may be pruned at.
PRUNERS: dict[str, Callable[[PrunerConfig, int, int, int], optuna.pruners.BasePruner]] = {
    "hyperband": lambda cfg, steps, first, _every: optuna.pruners.HyperbandPruner(
        min_resource=first, max_resource=steps, reduction_factor=cfg.reduction_factor),
    # The earliest step Optuna's median pruner may prune at is n_warmup_steps.
    "median": lambda cfg, _steps, first, every: optuna.pruners.MedianPruner(
        n_startup_trials=cfg.n_startup_trials, n_warmup_steps=max((cfg.n_warmup_evals + 1) * every, first)),
    "extrapolate": lambda cfg, steps, first, _every: ExtrapolatingPruner(steps, first, cfg.n_startup_trials),
    "none": lambda *_: optuna.pruners.NopPruner(),
}


def make_pruner(cfg: PrunerConfig, train_steps: int, eval_every: int) -> optuna.pruners.BasePruner:
    """The configured pruner; its resource is the training step at which a trial reports (one per evaluation).

    The smallest rung (Hyperband) or warm-up is the first evaluation at or after `min_steps`,
    so a rung always falls on a step at which trials report. `pruner.name` is one of PRUNERS (the study
    file's type allows no other; a test keeps the two the same).
    """
    first = min(eval_every * max(1, math.ceil(cfg.min_steps / eval_every)), train_steps)
    return PRUNERS[cfg.name](cfg, train_steps, first, eval_every)
