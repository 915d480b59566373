"""What a study holds: a text summary for `hpsearch status`, and exporting a trial's model."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.checkpoint import BEST_GENERATOR, CHECKPOINT_NAME, load_checkpoint
from hpsearch.config import dump_config, from_dict
from hpsearch.errors import CheckpointError, ConfigError
from hpsearch.findings import sentence
from hpsearch.io import atomic_write, existing_ancestor
from hpsearch.search.config import LoadedStudy
from hpsearch.search.confirm import confirmation
from hpsearch.search.noise import collapse_note, single_runs
from hpsearch.search.record import TrialRecord, read_trial, read_trials
from hpsearch.search.study import artifacts_dir, open_study
from hpsearch.training import CONFIG_NAME

_logger = logging.getLogger(__name__)
_ARTIFACT_ID = re.compile(r"[0-9a-fA-F-]{1,64}")


def study_summary(loaded: LoadedStudy) -> str:
    """Trials by state, the best trial and its configuration, and the running trials' progress."""
    study = open_study(loaded)
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
    return "\n".join(lines + _confirmed(loaded, study, trials))


def _confirmed(loaded: LoadedStudy, study: optuna.Study, trials: list[TrialRecord]) -> list[str]:
    """The confirmed ranking, one finding per configuration; without one, the single runs beside their noise."""
    found = confirmation(loaded, study)
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


def export_trial(loaded: LoadedStudy, which: str, out: Path, last: bool = False, overwrite: bool = False) -> Path:
    """Write the trial's config.yaml and checkpoint.pt into `out`; returns the checkpoint path.

    By default the checkpoint is the generator of the trial's best evaluation, the one its
    value describes; `last` exports the final training checkpoint instead (to resume or
    fine-tune it). A trial stored before hpsearch kept best generators has only the last one,
    which is exported with a warning. Only a finished trial (complete, or pruned) is
    exported: a running, waiting or failed trial's checkpoint is a half-trained model that no
    reported value describes. The checkpoint is read back before anything is written, and
    `out` is created only when there is one to put in it.

    Args:
        which: a trial number, or "best".
        overwrite: replace a config.yaml, checkpoint.pt or best_generator.pt already in `out`
            (refused otherwise: they may be another run's).

    Raises:
        ConfigError: `out` holds an export already (without `overwrite`), no such trial, not finished,
            or no readable checkpoint anywhere.
    """
    taken = [name for name in (CONFIG_NAME, CHECKPOINT_NAME, BEST_GENERATOR) if (out / name).exists()]
    if taken and not overwrite:
        raise ConfigError(f"--out {out}: already holds {' and '.join(taken)}; pass --overwrite to replace them or "
                          "choose another folder")
    study = open_study(loaded)
    trial, artifacts = read_trial(_find(study, which)), artifacts_dir(loaded, study)
    if not trial.finished:
        raise ConfigError(f"trial {trial.number} is {trial.state.name.lower()}; only complete or pruned trials "
                          "can be exported")
    config = from_dict(trial.config, f"trial {trial.number} config")
    with tempfile.TemporaryDirectory(prefix=".hpsearch-export-", dir=existing_ancestor(out)) as tmp:
        staged = Path(tmp) / CHECKPOINT_NAME
        damaged: list[str] = []
        if last:
            kind = "last" if fetch_checkpoint(artifacts, trial, staged, damaged) else None
        else:
            kind = fetch_generator(artifacts, trial, staged, damaged)
        if not kind:
            found = f" (found only damaged ones: {'; '.join(damaged)})" if damaged else ""
            raise ConfigError(f"trial {trial.number} ({trial.state.name.lower()}) has no readable checkpoint in its "
                              f"run folder or the artifact store{found}")
        if kind == "last" and not last:
            _logger.warning("trial %d has no stored best generator (a study from before hpsearch kept them, or a "
                            "pruned trial): exported its last checkpoint, whose quality may differ from the trial's "
                            "value", trial.number)
        out.mkdir(parents=True, exist_ok=True)
        dump_config(config, out / CONFIG_NAME)
        os.replace(staged, out / CHECKPOINT_NAME)
        # With --overwrite: a best generator left there would be read before the checkpoint (`sample DIR`).
        (out / BEST_GENERATOR).unlink(missing_ok=True)
    return out / CHECKPOINT_NAME


def fetch_checkpoint(artifacts: Path, trial: TrialRecord, dest: Path, damaged: list[str] | None = None) -> bool:
    """Copy the trial's final checkpoint to `dest`: from its run folder when this machine has a
    readable one, else from the artifact store. False when neither has a readable one (e.g. a
    trial that failed early, or a damaged file); nothing is written then, and why each found
    file could not be read is added to `damaged`."""
    return _fetch_first(_sources(artifacts, trial, CHECKPOINT_NAME, trial.checkpoint_artifact), dest, damaged)


def fetch_generator(artifacts: Path, trial: TrialRecord, dest: Path, damaged: list[str] | None = None) -> str | None:
    """Copy the generator that the trial's value describes to `dest`: "best" (its best evaluation's),
    or "last" (its final checkpoint, for trials stored without a best one); None when neither is readable."""
    if _fetch_first(_sources(artifacts, trial, BEST_GENERATOR, trial.best_artifact), dest, damaged):
        return "best"
    return "last" if fetch_checkpoint(artifacts, trial, dest, damaged) else None


def _sources(artifacts: Path, trial: TrialRecord, name: str, artifact: str | None) -> list[Path | None]:
    """The run folder's copy (when this machine has it), then the artifact store's."""
    return [Path(trial.run_dir) / name if trial.run_dir else None, _artifact_path(artifacts, artifact)]


def _fetch_first(sources: list[Path | None], dest: Path, damaged: list[str] | None) -> bool:
    for source in sources:
        if source is None or not source.is_file():
            continue
        try:
            load_checkpoint(source)
        except CheckpointError as exc:
            if damaged is None:
                _logger.warning("%s", exc)
            else:
                damaged.append(str(exc))
            continue
        _copy(source, dest)
        return True
    return False


def fetch_artifact(artifacts_dir: Path, artifact: object, dest: Path) -> bool:
    """Copy a stored artifact to `dest`. False when the reference is not an id the store made
    (a tampered attribute cannot point outside the store) or the store does not hold it."""
    source = _artifact_path(artifacts_dir, artifact)
    if source is None or not source.is_file():
        return False
    _copy(source, dest)
    return True


def _artifact_path(artifacts_dir: Path, artifact: object) -> Path | None:
    return artifacts_dir / str(artifact) if is_artifact_id(artifact) else None


def _copy(source: Path, dest: Path) -> None:
    with source.open("rb") as fh_in:
        atomic_write(dest, lambda fh: shutil.copyfileobj(fh_in, fh))


def is_artifact_id(value: object) -> bool:
    """An id Optuna's artifact store made (a UUID): a stored attribute cannot point outside the store."""
    return isinstance(value, str) and bool(_ARTIFACT_ID.fullmatch(value))


def _find(study: optuna.Study, which: str) -> FrozenTrial:
    if which == "best":
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            raise ConfigError("trial best: the study has no completed trial yet")
        return study.best_trial
    if not (which.isascii() and which.isdigit() and len(which) <= 12):
        raise ConfigError(f"trial {which}: must be a trial number or 'best'; got {which!r}")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if int(which) not in trials:
        raise ConfigError(f"trial {which}: no such trial (numbers 0..{max(trials, default=-1)})")
    return trials[int(which)]
