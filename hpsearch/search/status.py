"""What a study holds, as `hpsearch status` prints it: trials by state, the best, the confirmed or single-run
ranking."""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from hpsearch.search.backend import Backend
from hpsearch.search.confirm import confirmation
from hpsearch.search.noise import collapse_note, single_runs
from hpsearch.search.record import TrialRecord, read_trials
from hpsearch.search.study import open_study, study_backend
from hpsearch.search.study_file import LoadedStudy
from hpsearch.stats import sentence

_logger = logging.getLogger(__name__)


def study_summary(loaded: LoadedStudy, backend: Backend | None = None) -> str:
    """Trials by state, the best trial and its configuration, and the running trials' progress.

    Args:
        backend: the study's storage when the caller has it open (a worker's, after `run` or `confirm`).
    """
    backend = backend if backend is not None else study_backend(loaded, must_exist=True)
    study = open_study(loaded, backend=backend)
    trials = read_trials(study)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [f"study {loaded.cfg.study} in {loaded.storage.masked}: {len(trials)} trials: "
             + ", ".join(f"{counts[s]} {s.name.lower()}" for s in TrialState if counts[s]),
             f"objective: {loaded.cfg.objective} (minimized, {loaded.base_config.metrics.features} features)"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        kept = next(t for t in complete if t.number == best.number)
        lines.append(f"best: trial {best.number} = {best.value:.4g}" + collapse_note(kept, loaded.cfg.objective))
        lines.append("best configuration: " + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))
    for t in trials:
        if t.state == TrialState.RUNNING:
            lines.append(f"running: trial {t.number} at step {t.progress_step}/{t.steps or '?'}")
    return "\n".join(lines + _confirmed(loaded, study, trials, backend))


def _confirmed(loaded: LoadedStudy, study: optuna.Study, trials: list[TrialRecord], backend: Backend) -> list[str]:
    """The confirmed ranking, one finding per configuration; without one, the single runs beside their noise."""
    found = confirmation(loaded, study, backend)
    if found is None:
        singles = single_runs(trials, loaded.cfg.objective)
        return ["ranking: single runs (one seed, one evaluation batch each); `hpsearch confirm` repeats the "
                "leaders with fresh seeds", *(f"  {s}" for s in singles.sentences())]
    lines = [f"confirmed ({found.done} of {found.planned} runs complete, measured on {found.samples} independent "
             "samples each):", *(f"  {s}" for s in found.sentences())]
    for param, values in found.effects.items():
        lines += [f"effect of {param} (confirmed runs grouped by its value):",
                  *(f"  {sentence(v, values[0], found.objective)}" for v in values)]
    return lines


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
