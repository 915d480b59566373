"""A study's artifacts: the store workers upload to, what a trial uploads, and finding and copying them back.

Optuna's file-system artifact store holds each trial's sample grids, last checkpoint and best
generator under ids it makes; the trial record names them. Writing is atomic here (a worker
killed mid-upload leaves no truncated file under a valid id), reading accepts only ids the
store could have made (a tampered attribute cannot point outside the store), and a trial's
checkpoint is taken from its run folder when this machine has a readable one, else from the store.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from hpsearch.checkpoint import BEST_GENERATOR, CHECKPOINT_NAME, load_checkpoint
from hpsearch.errors import CheckpointError
from hpsearch.io import atomic_write
from hpsearch.runner import Best
from hpsearch.search.record import TrialRecord, TrialWriter
from hpsearch.search.study_file import LoadedStudy

_logger = logging.getLogger(__name__)
ARTIFACTS_KEY = "artifacts_dir"  # study attribute: the artifact folder's absolute path at creation
_ARTIFACT_ID = re.compile(r"[0-9a-fA-F-]{1,64}")


class AtomicArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system artifact store, writing each artifact atomically.

    Optuna's own writes in place, so a worker killed mid-upload would leave a truncated
    checkpoint or grid under a valid artifact id.
    """

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self._get_filepath(artifact_id)
        atomic_write(path, lambda fh: shutil.copyfileobj(content_body, fh))


def upload_run(store: FileSystemArtifactStore, trial: optuna.Trial, record: TrialWriter, run_dir: Path,
               best: Best) -> None:
    """Store a finished run's last checkpoint and its best generator as artifacts, in the trial record."""
    record.checkpoint(upload_artifact(artifact_store=store, file_path=str(run_dir / CHECKPOINT_NAME),
                                      study_or_trial=trial))
    record.best(upload_artifact(artifact_store=store, file_path=str(run_dir / BEST_GENERATOR), study_or_trial=trial),
                best.step, best.value)


def artifacts_dir(loaded: LoadedStudy, study: optuna.Study) -> Path:
    """The study's artifact folder: as configured when it exists from here, else the absolute path recorded
    when the study was created (a relative `artifacts` is relative to the folder the workers ran in, so a
    report, export or dashboard run from elsewhere finds the grids and checkpoints all the same)."""
    configured = loaded.artifacts_dir
    stored = study.user_attrs.get(ARTIFACTS_KEY)
    if configured.is_dir() or not isinstance(stored, str) or not Path(stored).is_dir():
        return configured
    return Path(stored)


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
