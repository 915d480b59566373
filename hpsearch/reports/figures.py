"""The report's other figures: importances, optimization history, learning curves, section III-A monitoring."""

from __future__ import annotations

import inspect
import logging
import math
import warnings

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from hpsearch.reports.table import spans_decade
from hpsearch.search import TrialRecord, finite

_logger = logging.getLogger(__name__)

# (evaluation keys, subplot title) of the monitoring plots (Figure 7 of the conditioning study).
MONITORED: list[tuple[tuple[str, ...], str]] = [
    (("fid",), "FID"),
    (("class_fid",), "class-averaged FID"),
    (("cond_acc",), "conditional accuracy"),
    (("msssim",), "MS-SSIM (within class)"),
    (("grad_norm_g_mean", "grad_norm_g_max"), "G gradient norm (mean, max)"),
    (("grad_norm_d_mean", "grad_norm_d_max"), "D gradient norm (mean, max)"),
    # beyond the paper's figure: the metrics of issue 27 (second key dashed)
    (("kid", "class_kid"), "KID (all, class-averaged dashed)"),
    (("precision", "recall"), "precision, recall (dashed)"),
    (("density", "coverage"), "density, coverage (dashed)"),
]
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def recommended_trials() -> int:
    """The completed trials Optuna's default evaluator (PED-ANOVA) asks for: at least 5 in its target
    quantile (its documentation), so 5 / target_quantile (50 at its default quantile of 0.1)."""
    default = inspect.signature(optuna.importance.PedAnovaImportanceEvaluator).parameters["target_quantile"].default
    return math.ceil(5 / float(default))


def importances(study: optuna.Study) -> tuple[go.Figure | None, str]:
    """Optuna's default importance evaluator (it handles parameters that only some trials have).

    Returns:
        The figure (its title says how many trials it rests on) and a warning when they are fewer
        than the evaluator recommends; or None with the reason when there are too few to compute.
    """
    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    if complete < 2:
        return None, f"parameter importances need at least 2 completed trials; the study has {complete}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental and small-sample warnings
            fig = optuna.visualization.plot_param_importances(study)
    except (ValueError, RuntimeError) as exc:  # e.g. every completed trial has the same value
        return None, f"parameter importances could not be computed: {exc}"
    fig.update_layout(title=f"Hyperparameter importances (PED-ANOVA) from {complete} completed trials")
    least = recommended_trials()
    if complete >= least:
        return fig, ""
    return fig, (f"parameter importances rest on {complete} completed trials; Optuna's PED-ANOVA evaluator "
                 f"recommends at least {least} (5 in its top 10%): read them as a hint, not a finding")


def history(study: optuna.Study, objective: str) -> go.Figure:
    """Objective of every completed trial in order, with the best so far (Optuna's plot)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = optuna.visualization.plot_optimization_history(study, target_name=objective)
    if spans_decade([t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]):
        fig.update_yaxes(type="log")
    return fig


def learning_curves(trials: list[TrialRecord], objective: str, best: int | None) -> go.Figure:
    """Reported objective over training steps: complete trials solid, pruned ones dashed and cut short."""
    fig = go.Figure()
    values: list[float] = []
    for t in sorted(trials, key=lambda t: t.number == best):  # the best trial on top
        if not t.intermediate or not t.finished:
            continue
        steps = sorted(t.intermediate)
        ys = [t.intermediate[s] for s in steps]
        values += ys
        pruned = t.state == TrialState.PRUNED
        color = _PALETTE[1] if t.number == best else ("#aaaaaa" if pruned else _PALETTE[0])
        fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines+markers", name=f"trial {t.number} ({t.state.name.lower()})",
                                 line={"color": color, "dash": "dot" if pruned else "solid",
                                       "width": 3 if t.number == best else 1},
                                 marker={"size": 4}, showlegend=False))
    fig.update_layout(title=f"{objective} at each evaluation (pruned trials dotted, best in red)",
                      xaxis_title="training step", yaxis_title=objective, height=420)
    if spans_decade(values):
        fig.update_yaxes(type="log")
    return fig


def monitoring(runs: list[tuple[str, TrialRecord]]) -> go.Figure:
    """FID, class FID, accuracy, MS-SSIM, KID, precision/recall, density/coverage and G/D gradient norms over
    steps, one colour per trial."""
    rows = math.ceil(len(MONITORED) / 3)
    fig = make_subplots(rows=rows, cols=3, subplot_titles=[title for _, title in MONITORED],
                        horizontal_spacing=0.07, vertical_spacing=0.14)
    for i, (label, trial) in enumerate(runs):
        evals = trial.evals
        color = _PALETTE[i % len(_PALETTE)]
        for j, (keys, _) in enumerate(MONITORED):
            for k, key in enumerate(keys):
                points = [(e["step"], e[key]) for e in evals if finite(e.get(key))]
                fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                         name=f"{label}: {key}", legendgroup=label, showlegend=j == 0 and k == 0,
                                         line={"color": color, "dash": "dash" if k else "solid"}),
                              row=j // 3 + 1, col=j % 3 + 1)
    fig.update_xaxes(title_text="step", row=rows)
    fig.update_layout(title="Monitoring (section III-A): " + " vs ".join(label for label, _ in runs),
                      height=310 * rows, legend={"orientation": "h", "y": -0.08})
    return fig
