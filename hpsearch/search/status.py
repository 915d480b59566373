"""What a study holds: a text summary for `hpsearch status`, and exporting a trial's model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact
from optuna.trial import FrozenTrial, TrialState

from hpsearch.checkpoint import CHECKPOINT_NAME
from hpsearch.config import dump_config, from_dict
from hpsearch.errors import ConfigError
from hpsearch.search.study import LoadedStudy, mask_url, open_study

_ARTIFACT_ID = re.compile(r"[0-9a-fA-F-]{1,64}")


def study_summary(loaded: LoadedStudy) -> str:
    """Trials by state, the best trial and its configuration, and the running trials' progress."""
    study = open_study(loaded)
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [f"study {loaded.cfg.study} in {mask_url(loaded.storage_url)}: {len(trials)} trials: "
             + ", ".join(f"{counts[s]} {s.name.lower()}" for s in TrialState if counts[s]),
             f"objective: {loaded.cfg.objective} (minimized, {loaded.base.metrics.features} features)"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        lines.append(f"best: trial {best.number} = {best.value:.4g}")
        lines.append("best configuration: " + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))
    for t in trials:
        if t.state == TrialState.RUNNING:
            step, total = t.user_attrs.get("progress_step", 0), t.user_attrs.get("steps", "?")
            lines.append(f"running: trial {t.number} at step {step}/{total}")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def export_trial(loaded: LoadedStudy, which: str, out: Path) -> Path:
    """Write the trial's config.yaml and checkpoint.pt into `out`; returns the checkpoint path.

    The checkpoint comes from the trial's run folder when this machine has it, else from
    the artifact store.

    Raises:
        ConfigError: no such trial, or it has no checkpoint (pruned early, failed, running).
    """
    trial = _find(open_study(loaded), which)
    dest = out / CHECKPOINT_NAME
    out.mkdir(parents=True, exist_ok=True)
    if not fetch_checkpoint(loaded, trial, dest):
        raise ConfigError(f"--trial {which}: trial {trial.number} ({trial.state.name.lower()}) has no checkpoint")
    dump_config(from_dict(trial.user_attrs["config"], f"trial {trial.number}"), out / "config.yaml")
    return dest


def fetch_checkpoint(loaded: LoadedStudy, trial: FrozenTrial, dest: Path) -> bool:
    """Copy the trial's final checkpoint to `dest`: from its run folder when this machine has it,
    else from the artifact store. False when neither has it (e.g. a trial that failed early)."""
    run_dir = trial.user_attrs.get("run_dir")
    if run_dir and (Path(run_dir) / CHECKPOINT_NAME).is_file():
        shutil.copyfile(Path(run_dir) / CHECKPOINT_NAME, dest)
        return True
    return fetch_artifact(loaded.artifacts_dir, trial.user_attrs.get("checkpoint_artifact"), dest)


def fetch_artifact(artifacts_dir: Path, artifact: object, dest: Path) -> bool:
    """Copy a stored artifact to `dest`. False when the reference is not an id the store made
    (a tampered attribute cannot point outside the store) or the store does not hold it."""
    if not is_artifact_id(artifact) or not (artifacts_dir / str(artifact)).is_file():
        return False
    store = FileSystemArtifactStore(str(artifacts_dir))
    download_artifact(artifact_store=store, artifact_id=str(artifact), file_path=str(dest))
    return True


def is_artifact_id(value: object) -> bool:
    """An id Optuna's artifact store made (a UUID): a stored attribute cannot point outside the store."""
    return isinstance(value, str) and bool(_ARTIFACT_ID.fullmatch(value))


def _find(study: optuna.Study, which: str) -> FrozenTrial:
    if which == "best":
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            raise ConfigError("--trial best: the study has no completed trial yet")
        return study.best_trial
    if not which.isdigit():
        raise ConfigError(f"--trial: must be a trial number or 'best'; got {which!r}")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if int(which) not in trials:
        raise ConfigError(f"--trial {which}: no such trial (numbers 0..{max(trials, default=-1)})")
    return trials[int(which)]
