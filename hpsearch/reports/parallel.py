"""The parallel-coordinate plot of Figure 8: one line per finished trial, coloured by the objective.

Plotly's parcoords draws numbers only, so categorical axes get integer positions labelled
with the choice names, log ranges are drawn in log10 with the real values as labels, and a
parameter a trial does not have (a branch it did not take) sits at a labelled "n/a" position
below the range. The best trial is drawn last in a colour outside the objective's scale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from hpsearch.reports.table import ParamAxis, spans_decade

NA = "n/a"
BEST_COLOR = "#d62728"
_SCALE_TOP = 0.8  # objective colours use [0, 0.8]; the best trial's line sits at 1.0
_NA_GAP = 0.15  # the n/a position's distance below the range, as a share of the range


def parallel_coordinates(table: pd.DataFrame, axes: list[ParamAxis], objective: str, best: int | None) -> go.Figure:
    """Build the figure from `trials_table`'s rows; `best` is the best trial's number (drawn last, in red)."""
    order = [n for n in table.index if n != best] + ([best] if best in table.index else [])
    rows = table.loc[order]
    numbers = sorted(rows.index)
    ticks = numbers if len(numbers) <= 15 else sorted({int(v) for v in np.linspace(numbers[0], numbers[-1], 8)})
    dims = [{"label": "trial", "values": list(rows.index), "tickvals": ticks, "ticktext": [str(t) for t in ticks]}]
    dims += [_dimension(rows[a.name], a) for a in axes]
    dims.append(_categorical(rows["state"], "state", ("complete", "pruned"), missing=False))
    dims.append(_numeric(rows["objective"], f"{objective} (pruned: best reported)", *_span(rows["objective"]),
                         log=spans_decade(rows["objective"])))
    colors, colorbar = _colors(rows["objective"], best, objective)
    line = {"color": colors, "colorscale": _colorscale(), "cmin": 0.0, "cmax": 1.0, "showscale": True,
            "colorbar": colorbar}
    title = f"{len(rows)} finished trials, coloured by {objective}"
    if best in table.index:
        title += f"; best trial #{best} in red"
    crowded = len(dims) > 12  # tilt the labels so that long parameter names do not overlap
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, unselected={"line": {"opacity": 0.15}},
                                 labelangle=-30 if crowded else 0))
    fig.update_layout(title=title, margin={"l": 60, "r": 60, "t": 150 if crowded else 90, "b": 40},
                      height=600 if crowded else 520, meta={"axes": len(dims)})
    fig.update_layout(title_y=0.98)
    return fig


def _dimension(values: pd.Series, axis: ParamAxis) -> dict[str, Any]:
    if axis.kind == "choice":
        return _categorical(values, axis.name, axis.choices, missing=axis.conditional or values.isna().any())
    return _numeric(values, axis.name, axis.low, axis.high, axis.log, integer=axis.kind == "int")


def _categorical(values: pd.Series, label: str, choices: tuple[Any, ...], missing: bool) -> dict[str, Any]:
    """Choices at 1..n, n/a (a branch not taken) at 0."""
    codes = {_key(c): i + 1 for i, c in enumerate(choices)}
    ticks = ([0] if missing else []) + list(codes.values())
    text = ([NA] if missing else []) + [_label(c) for c in choices]
    positions = [0 if _missing(v) else codes.get(_key(v), 0) for v in values]
    return {"label": label, "values": positions, "tickvals": ticks, "ticktext": text,
            "range": [min(ticks) - 0.25, max(ticks) + 0.25]}


def _numeric(values: pd.Series, label: str, low: float, high: float, log: bool,
             integer: bool = False) -> dict[str, Any]:
    """The range [low, high] (log10 when `log`); missing values at a labelled position below it."""
    lo, hi = (math.log10(low), math.log10(high)) if log else (float(low), float(high))
    span = (hi - lo) or 1.0
    na = lo - _NA_GAP * span
    positions = [na if _missing(v) else (math.log10(v) if log else float(v)) for v in values]
    if integer and not log and high - low <= 8:
        ticks = [float(v) for v in range(int(low), int(high) + 1)]
    else:
        ticks = list(np.linspace(lo, hi, 5)) if hi > lo else [lo]
    text = [_number(10 ** t if log else t) for t in ticks]
    has_na = any(p == na for p in positions)
    if has_na:
        ticks, text = [na, *ticks], [NA, *text]
    return {"label": label, "values": positions, "tickvals": ticks, "ticktext": text,
            "range": [na if has_na else lo, hi]}


def _colors(objective: pd.Series, best: int | None, name: str) -> tuple[list[float], dict[str, Any]]:
    """Objective → [0, 0.9] (log when it spans a decade; missing = worst); the best trial → 1."""
    log = spans_decade(objective)
    lo, hi = _span(objective)
    lo_t, hi_t = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
    span = (hi_t - lo_t) or 1.0

    def scale(v: float) -> float:
        return _SCALE_TOP if _missing(v) else _SCALE_TOP * ((math.log10(v) if log else v) - lo_t) / span

    colors = [1.0 if n == best else scale(v) for n, v in objective.items()]
    ticks = list(np.linspace(0, _SCALE_TOP, 4))
    text = [_number(10 ** (lo_t + t / _SCALE_TOP * span) if log else lo_t + t / _SCALE_TOP * span) for t in ticks]
    if best is not None:
        ticks, text = [*ticks, 1.0], [*text, f"best #{best}"]
    return colors, {"title": {"text": name, "side": "right"}, "tickvals": ticks, "ticktext": text}


def _colorscale() -> list[list[Any]]:
    stops = np.linspace(0, _SCALE_TOP, 8)
    viridis = sample_colorscale("Viridis", list(stops / _SCALE_TOP))
    return [[float(s), c] for s, c in zip(stops, viridis, strict=True)] + [[0.9, BEST_COLOR], [1.0, BEST_COLOR]]


def _span(values: pd.Series) -> tuple[float, float]:
    finite = [float(v) for v in values if not _missing(v)]
    return (min(finite), max(finite)) if finite else (0.0, 1.0)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _key(value: Any) -> str:
    """Match a table value to a choice (pandas turns ints in a column with gaps into floats)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _label(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
