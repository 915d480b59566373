"""`hpsearch report`: a study → a static folder (index.html, plotly.min.js, CSV, grids) that opens offline."""

from __future__ import annotations

import datetime as dt
import html
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline
from optuna.trial import TrialState

from hpsearch.errors import ConfigError
from hpsearch.io import check_replaceable, check_writable, mark_owned, staged_folder
from hpsearch.reports import figures, findings
from hpsearch.reports.internals import generator_figures
from hpsearch.reports.parallel import parallel_coordinates
from hpsearch.reports.table import METRICS, param_axes, trials_table
from hpsearch.search import (
    Confirmation,
    LoadedStudy,
    TrialRecord,
    artifacts_dir,
    confirmation,
    fetch_artifact,
    is_artifact_id,
    open_study,
    read_trials,
    single_runs,
    snapshot,
)

_logger = logging.getLogger(__name__)
PLOTLY_JS = "plotly.min.js"


@dataclass
class Report:
    """What was written, for the caller and the tests.

    Attributes:
        out: the report folder (index.html inside).
        figures: name → plotly figure, each a div of index.html with that id ("findings": the
            confirmed ranking's interval plot, when the study has confirmation runs).
        table: every finished trial (see `trials_table`); `top` is its first K completed rows.
        notes: what could not be shown and why (shown in the page too).
        internals: (caption, relative path) of the attention-map and style-mixing figures of
            the best trial of each generator family that has them.
    """

    out: Path
    figures: dict[str, go.Figure]
    table: pd.DataFrame
    top: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    internals: list[tuple[str, str]] = field(default_factory=list)
    findings: Confirmation | None = None


def build_report(loaded: LoadedStudy, out: Path, top_k: int = 5, png: bool = True) -> Report:
    """Write the report of `loaded`'s study into `out` (replaced as a whole; nothing half-written).

    `out` must be new, empty, or an earlier report of the same study: a report never replaces
    a folder it did not write (see `hpsearch.io.check_replaceable`).

    Raises:
        ConfigError: `out` holds something else, the study does not exist or has no finished trial yet.
    """
    check_report_out(out, loaded.cfg.study)
    study = snapshot(open_study(loaded))  # every part of the report reads the same moment
    trials, artifacts = read_trials(study), artifacts_dir(loaded, study)
    axes = param_axes(loaded.space, loaded.n_blocks)
    objective = loaded.cfg.objective
    table = trials_table(trials, axes, objective)
    if table.empty:
        raise ConfigError(f"study {loaded.cfg.study!r} has no finished trial yet; nothing to report")
    complete = table[table.state == "complete"].sort_values("objective")
    best = int(complete.index[0]) if len(complete) else None
    report = Report(out, {}, table, complete.head(top_k))
    found = confirmation(loaded, study)
    report.findings = found if found is not None and found.ranking else None
    if report.findings is not None:
        report.figures["findings"] = findings.interval_plot(report.findings)
    report.figures["parallel"] = parallel_coordinates(table, axes, objective, best)
    importance, why = figures.importances(study)
    if importance is not None:
        report.figures["importances"] = importance
    if why:
        report.notes.append(why)
    report.figures["history"] = figures.history(study, objective)
    report.figures["curves"] = figures.learning_curves(trials, objective, best)
    runs = _monitored(trials, best, objective)
    if runs:
        report.figures["monitoring"] = figures.monitoring(runs)

    with staged_folder(out) as tmp:
        grids = _download_grids(artifacts, [t for t in trials if t.number in report.top.index
                                            or (report.findings and t.number == report.findings.winner.number)],
                                tmp, report.notes)
        report.internals = generator_figures(artifacts, trials, tmp, report.notes)
        png = png and _write_png(report.figures["parallel"], tmp / "parallel_coordinates.png", report.notes)
        report.top.to_csv(tmp / "top_trials.csv")
        table.to_csv(tmp / "trials.csv")
        (tmp / PLOTLY_JS).write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        page = _page(loaded, trials, report, [a.name for a in axes], grids, png)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        mark_owned(tmp, "report", loaded.cfg.study)
    _logger.info("report of %d finished trials written to %s", len(table), out / "index.html")
    return report


def check_report_out(out: Path, study: str) -> None:
    """`out` may take the report of `study` (nothing is created; see `build_report`).

    Raises:
        ConfigError: naming --out, the folder and what it holds.
    """
    check_replaceable(out, "--out", "report", study, REPORT_FILES, legacy=lambda p: _legacy_report(p, study))
    for sub in ("grids", "internals"):  # a report writes only its PNGs there; anything else is the user's
        folder = out / sub
        added = sorted(p.name for p in folder.iterdir() if p.suffix != ".png" or not p.is_file()) \
            if folder.is_dir() and not folder.is_symlink() else []
        if added or folder.is_symlink():
            raise ConfigError(f"--out {out}: {sub}/ holds files a report did not write ({', '.join(added[:5])}), "
                              "which a new report would replace; move them out or name another folder")
    check_writable(out, "--out", is_dir=True)


REPORT_FILES = frozenset({"index.html", PLOTLY_JS, "trials.csv", "top_trials.csv", "parallel_coordinates.png",
                          "grids", "internals"})


def _legacy_report(folder: Path, study: str) -> bool:
    """A report of `study` written before reports were marked: its title (its files are checked by the caller)."""
    page = folder / "index.html"
    if not page.is_file() or page.is_symlink():
        return False
    try:
        with page.open("rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return f"<title>hpsearch report: {html.escape(study)}</title>" in head


def _monitored(trials: list[TrialRecord], best: int | None, objective: str) -> list[tuple[str, TrialRecord]]:
    """The best trial and the worst failed or pruned one (a diverged trial first), as in Figure 7."""
    by_number = {t.number: t for t in trials}
    runs = [(f"best #{best}", by_number[best])] if best is not None else []
    bad = [t for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED) and t.evals]
    if bad:
        worst = max(bad, key=lambda t: (t.failure is not None, _nan_last(t.objective_value)))
        runs.append((f"worst {worst.state.name.lower()} #{worst.number}", worst))
    return runs


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _download_grids(artifacts: Path, trials: list[TrialRecord], out: Path, notes: list[str]) -> dict[int, str]:
    """Each trial's final sample grid, from the artifact store, into out/grids/."""
    found = {}
    for t in trials:
        artifact = t.best_grid()
        if artifact is None:
            notes.append(f"trial {t.number}: no sample grid in {artifacts}")
            continue
        if not is_artifact_id(artifact):
            notes.append(f"trial {t.number}: ignored a sample-grid reference that is not an artifact id")
            continue
        path = out / "grids" / f"trial_{t.number:05d}.png"
        path.parent.mkdir(exist_ok=True)
        if not fetch_artifact(artifacts, artifact, path):  # reported, not fatal
            notes.append(f"trial {t.number}: sample grid {artifact} not in {artifacts}")
            continue
        found[t.number] = f"grids/{path.name}"
    return found


def _write_png(fig: go.Figure, path: Path, notes: list[str]) -> bool:
    """Static PNG through kaleido (headless Chromium); without a browser, the HTML alone and a note."""
    for name in ("kaleido", "choreographer", "logistro"):  # they log every browser start at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        width = max(1400, 75 * fig.layout.meta["axes"])  # room for every axis's tick labels
        fig.write_image(str(path), width=width, height=fig.layout.height, scale=1)
        return True
    except Exception as exc:  # kaleido missing, or it found no Chromium to drive
        notes.append(f"parallel_coordinates.png not written: kaleido could not render it "
                     f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                     "install Chromium for a static PNG")
        return False


def _page(loaded: LoadedStudy, trials: list[TrialRecord], report: Report, params: list[str],
          grids: dict[int, str], png: bool) -> str:
    sections = [_header(loaded, trials, params)]
    plot = report.figures.get("findings")
    winner = grids.get(report.findings.winner.number) if report.findings else None
    singles = single_runs(trials, loaded.cfg.objective, top=len(report.top) or 5)
    sections.append(findings.section(report.findings, singles, _div(plot, "findings") if plot else "", winner))
    titles = {"parallel": "Configurations (Figure 8)", "importances": "Parameter importances",
              "history": "Optimization history", "curves": "Learning curves",
              "monitoring": "Monitoring of the best and the worst trial (Figure 7)"}
    for name, fig in report.figures.items():
        if name != "findings":
            sections.append(f"<h2>{titles[name]}</h2>\n{_div(fig, name)}")
    if png:
        sections.append('<p>Static image: <a href="parallel_coordinates.png">parallel_coordinates.png</a></p>')
    sections.append(_top_table(report.top, params, grids))
    if report.internals:
        sections.append("<h2>Inside the generators (the second paper's Figures 12 and 16)</h2>" + "".join(
            f'<figure><img class="internals" src="{html.escape(src)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, src in report.internals))
    if report.notes:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul>")
    title = f"hpsearch report: {html.escape(loaded.cfg.study)}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
            f'<script src="{PLOTLY_JS}"></script>\n<style>{_CSS}</style></head>\n<body><h1>{title}</h1>\n'
            + "\n".join(sections) + "\n</body></html>\n")


def _div(fig: go.Figure, name: str) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=name, config={"displaylogo": False}))


def _header(loaded: LoadedStudy, trials: list[TrialRecord], params: list[str]) -> str:
    """What was searched, on what data, with which features, how many trials, and the compute."""
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    base, cfg = loaded.base_config, loaded.cfg
    wall = sum(t.wall_s or 0.0 for t in trials)
    steps = sum(t.last_step for t in trials)
    devices = sorted({t.device for t in trials if t.device})
    features = base.metrics.features + (" (domain classifier trained on the real data; FID not comparable "
                                         "with Inception FID)" if base.metrics.features == "domain" else "")
    rows = {
        "searched": f"{loaded.space.path.name}: {len(params)} parameters ({', '.join(params)})",
        "data": f"{base.data.name}, {base.data.image_size}×{base.data.image_size}, "
                f"{base.data.channels} channel(s)",
        "objective": f"{cfg.objective}, minimized; FID features: {features}",
        "search": f"sampler {cfg.sampler.name}, pruner {cfg.pruner.name}, up to {base.train.steps} steps per trial, "
                  f"evaluated every {base.train.eval_every}",
        "trials": ", ".join(f"{counts[s]} {s.name.lower()}" for s in TrialState if counts[s]),
        "compute": f"{wall / 3600:.2f} h of trial wall time, {steps:,} training steps, on {', '.join(devices) or '?'}",
        "storage": loaded.storage.masked,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    body = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items())
    return f'<table class="header">{body}</table>'


def _top_table(top: pd.DataFrame, params: list[str], grids: dict[int, str]) -> str:
    if top.empty:
        return "<h2>Top trials</h2><p>No completed trial yet.</p>"
    columns = ["objective", *params, *METRICS, "collapse", "last_step", "wall_s"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["trial", "samples", *columns])
    rows = []
    for number, row in top.iterrows():
        image = f'<img src="{grids[number]}" alt="trial {number} samples">' if number in grids else "n/a"
        cells = "".join(f"<td>{html.escape(_cell(row[c]) if c != 'collapse' else _flag(row[c]))}</td>"
                        for c in columns)
        rows.append(f"<tr><td>{number}</td><td>{image}</td>{cells}</tr>")
    # Fixed layout: the samples column gets a fifth of the page, the others share the rest and wrap.
    cols = '<col class="num"><col class="samples">' + '<col>' * len(columns)
    return (f"<h2>Top {len(top)} trials</h2><p>Also in <a href=\"top_trials.csv\">top_trials.csv</a> "
            f"(all finished trials: <a href=\"trials.csv\">trials.csv</a>). Sample grids: one row per class, "
            f"at the evaluation whose generator the trial keeps (its best).</p>\n"
            f"<p class=\"caution\">This ranking rests on single runs: each trial trained once, with one seed, and "
            f"was scored on one sample batch. A GAN's FID moves with both, so confirm the leaders with repeated "
            f"runs before calling a difference between them a result.</p>\n"
            f"<table class=\"top\"><colgroup>{cols}</colgroup><tr>{head}</tr>{''.join(rows)}</table>")


def _flag(collapsed: object) -> str:
    return "COLLAPSED" if bool(collapsed) else "no"


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
p.caution { background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.4em 0.8em; }
table.header th { text-align: left; padding-right: 1em; vertical-align: top; }
table.top { border-collapse: collapse; font-size: 0.85em; width: 100%; table-layout: fixed; }
table.top col.num { width: 3.5em; }
table.top col.samples { width: 20%; }
table.top th, table.top td { border: 1px solid #ccc; padding: 3px 6px; overflow-wrap: anywhere; }
table.top img { image-rendering: pixelated; width: 100%; max-width: 220px; }
"""
