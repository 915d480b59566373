"""The report's Findings section: the confirmed ranking with 95% intervals, worded findings, the winner's samples."""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from hpsearch.search import Confirmation, SingleRuns
from hpsearch.stats import Ranked, sentence

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def colour_by(found: Confirmation) -> str | None:
    """The searched choice that tells the ranked configurations apart (the first with two or more values)."""
    sources = found.sources.values()
    params = [p for t in sources for p, v in t.params.items() if isinstance(v, (str, bool))]
    for param in dict.fromkeys(params):
        if len({str(t.params.get(param)) for t in sources}) >= 2:
            return param
    return None


def interval_plot(found: Confirmation) -> go.Figure:
    """One point per configuration at its mean confirmed value, with its 95% interval; coloured by a searched choice."""
    param = colour_by(found)
    fig = go.Figure()
    groups: dict[str, list[Ranked]] = {}
    for entry in found.ranking:
        key = f"{param}={found.sources[entry.name].params.get(param)}" if param else "confirmed"
        groups.setdefault(key, []).append(entry)
    for i, (key, entries) in enumerate(groups.items()):
        means = [e.summary.mean for e in entries]
        fig.add_trace(go.Scatter(
            x=means, y=[e.name for e in entries], mode="markers", name=key,
            marker={"size": 10, "color": _PALETTE[i % len(_PALETTE)]},
            error_x={"type": "data", "symmetric": False, "thickness": 2,
                     "array": [_half(e.summary.high - e.summary.mean) for e in entries],
                     "arrayminus": [_half(e.summary.mean - e.summary.low) for e in entries]}))
    fig.update_layout(title=f"Confirmed {found.objective}: mean and 95% CI over each configuration's runs "
                            "(lower is better)",
                      xaxis_title=found.objective, height=160 + 40 * len(found.ranking),
                      yaxis={"autorange": "reversed"}, margin={"l": 20})
    return fig


def _half(width: float) -> float:
    return width if math.isfinite(width) else 0.0  # one run: no interval to draw


def section(found: Confirmation | None, singles: SingleRuns, plot_div: str, winner_grid: str | None) -> str:
    """The Findings section's HTML (the report opens with it); `found` has a ranking or is None.

    Without confirmation runs it states the single-run ranking of the top trials beside the
    objective's measured evaluation noise (`singles`).
    """
    if found is None:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in singles.sentences())
        return ("<h2>Findings</h2><p class=\"caution\">No confirmation runs yet: the ranking below rests on single "
                "runs (one training seed, one evaluation batch per trial), and a GAN's FID moves with both. "
                "<code>hpsearch confirm</code> trains the leaders again with fresh seeds and measures them "
                "independently; this section then states the ranking with its uncertainty.</p>"
                + (f"<p>The top trials beside the objective's own noise, measured by scoring each one's kept "
                   f"generator again on other evaluation batches:</p><ul class=\"singles\">{items}</ul>"
                   if items else ""))
    items = "".join(f"<li>{html.escape(s)}</li>" for s in found.sentences())
    effects = "".join(
        f"<p>Effect of <b>{html.escape(param)}</b> (runs grouped by its value):</p><ul>"
        + "".join(f"<li>{html.escape(sentence(v, values[0], found.objective))}</li>" for v in values) + "</ul>"
        for param, values in found.effects.items())
    winner = found.winner
    flag = html.escape(found.collapse_note(found.ranking[0].name))
    grid = (f'<figure><img class="winner" src="{html.escape(winner_grid)}" alt="trial {winner.number} samples">'
            f"<figcaption>Samples of the configuration with the lowest confirmed mean, search trial "
            f"{winner.number} (one row per class){flag}</figcaption></figure>" if winner_grid else "")
    return (f"<h2>Findings</h2><p>Confirmed by {found.done} of {found.planned} planned runs: each "
            f"configuration retrained with fresh seeds, each run's kept generator measured once more on "
            f"{found.samples} images it was not chosen on. Intervals are 95% t intervals of the mean; two "
            f"configurations whose interval of difference (Welch) contains 0 are not distinguishable. P(best) is the "
            f"probability that a configuration's true mean is the lowest given all the runs (the posterior of a "
            f"normal model with one variance shared by the configurations).</p>"
            f"<ul>{items}</ul>{effects}{plot_div}{grid}")
