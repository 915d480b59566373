"""The report's look inside the best generator of each family: attention maps and style mixing."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HPSearchError
from hpsearch.reports.table import objective_of
from hpsearch.sampling import load_generator
from hpsearch.search.status import fetch_checkpoint
from hpsearch.search.study import LoadedStudy
from hpsearch.visualize import (
    DEFAULT_QUERIES,
    attention_maps,
    save_attention_figure,
    save_style_mixing_figure,
    style_mixing,
)

_logger = logging.getLogger(__name__)
CAPTIONS = {
    "attention": "self-attention maps: each query dot's weights over the image (brighter = more; Figure 12)",
    "style-mixing": "style mixing: rows share the coarse styles, columns the fine ones (Figure 16)",
}


def family_of(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("config", {}).get("model", {}).get("generator", "dcgan"))


def generator_figures(loaded: LoadedStudy, trials: list[FrozenTrial], out: Path,
                      notes: list[str]) -> list[tuple[str, str]]:
    """Draw the figures for the best completed trial of each family that has something to show.

    Returns:
        (caption, path relative to `out`) per figure; what could not be drawn goes to `notes`.
    """
    best: dict[str, FrozenTrial] = {}
    for t in sorted((t for t in trials if t.state == TrialState.COMPLETE), key=objective_of):
        best.setdefault(family_of(t), t)
    figures = []
    for family, trial in sorted(best.items()):
        model = trial.user_attrs["config"]["model"]
        has_attention = family != "stylegan2" and model.get("g_attention", "none") != "none"
        kinds = ["style-mixing"] if family == "stylegan2" else ["attention"] if has_attention else []
        if not kinds:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / "checkpoint.pt"
            if not fetch_checkpoint(loaded, trial, checkpoint):
                notes.append(f"{family} trial {trial.number}: no checkpoint here for its {' and '.join(kinds)} figure")
                continue
            try:
                gen = load_generator(checkpoint, torch.device("cpu"))
                for kind in kinds:
                    path = out / "internals" / f"{kind}_{family}_trial_{trial.number:05d}.png"
                    _draw(kind, gen.generator, gen.config.model.z_dim, len(gen.class_names), path)
                    figures.append((f"{family}, best trial #{trial.number}: {CAPTIONS[kind]}",
                                    str(path.relative_to(out))))
            except HPSearchError as exc:
                notes.append(f"{family} trial {trial.number}: {exc}")
    return figures


def _draw(kind: str, gen: torch.nn.Module, z_dim: int, num_classes: int, path: Path) -> None:
    if kind == "attention":
        labels = torch.arange(min(num_classes, 3))
        images, maps = attention_maps(gen, labels, z_dim, DEFAULT_QUERIES)
        save_attention_figure(images, maps, DEFAULT_QUERIES, path)
    else:
        save_style_mixing_figure(style_mixing(gen, 0, 4, 4, None), 4, 4, path)
