"""A study's trials as one table: parameters (missing where a branch was not taken), state, objective, metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpsearch.search.space import SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
METRICS = ("fid", "class_fid", "cond_acc", "msssim")


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


def objective_of(trial: FrozenTrial) -> float:
    """A complete trial's value; a pruned one's best reported value (NaN when it reported none)."""
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        return trial.value
    return min(trial.intermediate_values.values(), default=math.nan)


def best_eval(trial: FrozenTrial, objective: str) -> dict[str, Any]:
    """The evaluation at which the trial reached its objective (the value is the best one)."""
    evals = [e for e in trial.user_attrs.get("evals", []) if finite(e.get(objective))]
    return min(evals, key=lambda e: e[objective], default={})


def trials_table(trials: list[FrozenTrial], axes: list[ParamAxis], objective: str) -> pd.DataFrame:
    """One row per finished (complete or pruned) trial, indexed by trial number.

    Columns: `state`, `objective`, one per parameter (None where the trial lacks it), the
    metrics at the trial's best evaluation, `last_step` (how far it trained) and `wall_s`.
    """
    rows = []
    for t in trials:
        if t.state not in FINISHED:
            continue
        metrics = best_eval(t, objective)
        rows.append({"trial": t.number, "state": t.state.name.lower(), "objective": objective_of(t),
                     **{a.name: t.params.get(a.name) for a in axes},
                     **{m: metrics.get(m, math.nan) for m in METRICS},
                     "last_step": max(t.intermediate_values, default=0),
                     "wall_s": t.user_attrs.get("wall_s", math.nan)})
    columns = ["trial", "state", "objective", *(a.name for a in axes), *METRICS, "last_step", "wall_s"]
    return pd.DataFrame(rows, columns=columns).set_index("trial")


def finite(value: Any) -> bool:
    """A real number that is not NaN or infinite (user attributes may hold None or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def spans_decade(values: Any) -> bool:
    """Positive values whose max/min exceeds 10: such axes and colours read better in log scale."""
    kept = [float(v) for v in values if finite(v)]
    return bool(kept) and min(kept) > 0 and max(kept) / min(kept) > 10
