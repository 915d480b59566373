"""`hpsearch export`: a finished trial's config and the generator its value describes, copied out of the study."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.checkpoint import BEST_GENERATOR, CHECKPOINT_NAME
from hpsearch.config import dump_config, from_dict
from hpsearch.errors import ConfigError
from hpsearch.io import existing_ancestor
from hpsearch.search.artifacts import artifacts_dir, fetch_checkpoint, fetch_generator
from hpsearch.search.record import read_trial
from hpsearch.search.study import open_study
from hpsearch.search.study_file import LoadedStudy
from hpsearch.training import CONFIG_NAME

_logger = logging.getLogger(__name__)


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
