"""The report's look inside the best generator of each family: attention maps and style mixing."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from optuna.trial import TrialState

from hpsearch.errors import HPSearchError
from hpsearch.generation import load_generator
from hpsearch.search import TrialRecord, fetch_generator
from hpsearch.visualize import FigureOptions, draw_figure, figures_for

_logger = logging.getLogger(__name__)
CAPTIONS = {
    "attention": "self-attention maps: each query dot's weights over the image (brighter = more; Figure 12)",
    "style-mixing": "style mixing: rows share the coarse styles, columns the fine ones (Figure 16)",
}


def generator_figures(artifacts: Path, trials: list[TrialRecord], out: Path,
                      notes: list[str]) -> list[tuple[str, str]]:
    """Draw the figures for the best completed trial of each family that has something to show.

    Returns:
        (caption, path relative to `out`) per figure; what could not be drawn goes to `notes`.
    """
    best: dict[str, TrialRecord] = {}
    for t in sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.objective_value):
        best.setdefault(t.family, t)
    figures = []
    for family, trial in sorted(best.items()):
        kinds = figures_for((trial.config or {}).get("model", {}))
        if not kinds:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / "checkpoint.pt"
            if not fetch_generator(artifacts, trial, checkpoint):
                notes.append(f"{family} trial {trial.number}: no checkpoint here for its {' and '.join(kinds)} figure")
                continue
            try:
                gen = load_generator(checkpoint, torch.device("cpu"))
                options = FigureOptions(classes=list(range(min(len(gen.class_names), 3))))
                for kind in kinds:
                    path = out / "internals" / f"{kind}_{family}_trial_{trial.number:05d}.png"
                    draw_figure(kind, gen.generator, gen.config.model.z_dim, options, path)
                    figures.append((f"{family}, best trial #{trial.number}: {CAPTIONS[kind]}",
                                    str(path.relative_to(out))))
            except HPSearchError as exc:
                notes.append(f"{family} trial {trial.number}: {exc}")
    return figures
