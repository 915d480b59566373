"""A study's trials as one table: parameters (missing where a branch was not taken), state, objective, metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpsearch.search import SearchSpace, TrialRecord, finite

METRICS = ("fid", "class_fid", "kid", "class_kid", "cond_acc", "precision", "recall", "coverage", "msssim")


@dataclass(frozen=True)
class ParamAxis:
    """One searched parameter as the report draws it.

    Attributes:
        name: the Optuna parameter name (e.g. `g_kernels_0`).
        kind: "int", "float" or "choice".
        low, high, log: the range of int and float parameters.
        choices: the choices of a categorical parameter.
        conditional: it exists only under one choice of a categorical, so some trials lack it.
    """

    name: str
    kind: str
    low: float
    high: float
    log: bool
    choices: tuple[Any, ...]
    conditional: bool


def param_axes(space: SearchSpace, n_blocks: int) -> list[ParamAxis]:
    """Every parameter the space can suggest, in file order (branch-only ones included)."""
    return [ParamAxis(name, node.kind, node.low, node.high, node.log, tuple(node.choices), conditional)
            for name, node, conditional in space.parameters(n_blocks)]


def trials_table(trials: list[TrialRecord], axes: list[ParamAxis], objective: str) -> pd.DataFrame:
    """One row per finished (complete or pruned) trial, indexed by trial number.

    Columns: `state`, `objective`, one per parameter (None where the trial lacks it), the
    metrics at the evaluation whose generator the trial keeps, `collapse` (that evaluation was
    flagged collapsed), `last_step` (how far it trained) and `wall_s`.
    """
    rows = []
    for t in trials:
        if not t.finished:
            continue
        metrics = t.kept_eval(objective)
        rows.append({"trial": t.number, "state": t.state.name.lower(), "objective": t.objective_value,
                     **{a.name: t.params.get(a.name) for a in axes},
                     **{m: metrics.get(m, math.nan) for m in METRICS}, "collapse": t.kept_collapsed(objective),
                     "last_step": t.last_step, "wall_s": math.nan if t.wall_s is None else t.wall_s})
    columns = ["trial", "state", "objective", *(a.name for a in axes), *METRICS, "collapse", "last_step", "wall_s"]
    return pd.DataFrame(rows, columns=columns).set_index("trial")


def spans_decade(values: Any) -> bool:
    """Positive values whose max/min exceeds 10: such axes and colours read better in log scale."""
    kept = [float(v) for v in values if finite(v)]
    return bool(kept) and min(kept) > 0 and max(kept) / min(kept) > 10
