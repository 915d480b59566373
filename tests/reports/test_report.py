"""`hpsearch report` on a real tiny study: the figures' data, the table, the grids, the page, bad input."""

from __future__ import annotations

import math
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image

from hpsearch.cli import main
from hpsearch.reports import Report, build_report
from hpsearch.reports.parallel import BEST_COLOR, NA
from hpsearch.search import load_study_config, open_study
from tests.search.helpers import write_study


@pytest.fixture(scope="module")
def built(tiny_study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, list[optuna.trial.FrozenTrial]]:
    loaded = load_study_config(tiny_study)
    out = tmp_path_factory.mktemp("report") / "tiny"
    report = build_report(loaded, out, top_k=5, png=False)
    return report, open_study(loaded).get_trials()


def test_parallel_coordinates_has_a_line_per_finished_trial_and_an_axis_per_parameter(built) -> None:
    report, trials = built
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    (trace,) = report.figures["parallel"].data
    assert trace.type == "parcoords" and len(trace.line.color) == len(finished) == 6
    dims = {d.label: d for d in trace.dimensions}
    params = ["z_dim", "g_kernels_0", "g_kernels_1", "g_cond", "g_hidden_layer", "d_cond", "g_lr"]
    assert set(params) | {"trial", "state"} <= dims.keys()
    numbers = list(dims["trial"].values)
    by_number = {t.number: t for t in finished}
    assert sorted(numbers) == sorted(by_number)

    # The conditional parameter: trials that did not choose hidden_concat sit at the n/a position.
    hidden = dims["g_hidden_layer"]
    na = hidden.tickvals[list(hidden.ticktext).index(NA)]
    for n, v in zip(numbers, hidden.values, strict=True):
        has = "g_hidden_layer" in by_number[n].params
        assert (v == na) != has and (not has or v == by_number[n].params["g_hidden_layer"])

    # Categorical axes are labelled with the choice names; each trial sits at its choice.
    g_cond = dims["g_cond"]
    labels = dict(zip(g_cond.tickvals, g_cond.ticktext, strict=True))
    assert set(labels.values()) == {"concat", "hidden_concat", "cbn_embedding", "cbn_linear"}
    assert [labels[v] for v in g_cond.values] == [by_number[n].params["g_cond"] for n in numbers]

    # Log range drawn in log10; pruned trials distinguishable on the state axis.
    assert list(dims["g_lr"].values) == pytest.approx([math.log10(by_number[n].params["g_lr"]) for n in numbers])
    states = dict(zip(dims["state"].tickvals, dims["state"].ticktext, strict=True))
    assert [states[v] for v in dims["state"].values] == [by_number[n].state.name.lower() for n in numbers]

    # The best trial is drawn last, in the colour beyond the objective's scale.
    best = min((t for t in finished if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert numbers[-1] == best.number and trace.line.color[-1] == 1.0 and max(trace.line.color[:-1]) < 0.9
    assert trace.line.colorscale[-1][1] == BEST_COLOR
    assert f"best #{best.number}" in trace.line.colorbar.ticktext


def test_importances_history_and_curves(built) -> None:
    report, trials = built
    (bars,) = report.figures["importances"].data
    assert set(bars.y) <= {"z_dim", "g_kernels_0", "g_kernels_1", "g_cond", "g_hidden_layer", "d_cond", "g_lr"}
    assert len(bars.y) >= 2
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    assert report.figures["importances"].layout.title.text.endswith(f"from {complete} completed trials")
    assert any(f"rest on {complete} completed trials" in n and "at least 50" in n for n in report.notes)
    page = (report.out / "index.html").read_text()
    assert "rests on single runs" in page and f"rest on {complete} completed trials" in page
    assert "No confirmation runs yet" in page and "findings" not in report.figures
    history_points = sum(len(tr.y) for tr in report.figures["history"].data if tr.mode == "markers")
    assert history_points == sum(t.state == TrialState.COMPLETE for t in trials)
    curves = {tr.name: tr for tr in report.figures["curves"].data}
    reported = [t for t in trials if t.intermediate_values]
    assert len(curves) == len(reported)
    for t in reported:
        tr = curves[f"trial {t.number} ({t.state.name.lower()})"]
        assert list(tr.x) == sorted(t.intermediate_values)
        assert (tr.line.dash == "dot") == (t.state == TrialState.PRUNED)
    assert all(len(tr.x) == 3 for tr in curves.values() if tr.line.dash == "solid")
    assert any(len(tr.x) < 3 for tr in curves.values() if tr.line.dash == "dot")  # cut short


def test_monitoring_shows_the_best_and_the_worst_pruned_trial(built) -> None:
    report, trials = built
    fig = report.figures["monitoring"]
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:4] == ["FID", "class-averaged FID", "conditional accuracy", "MS-SSIM (within class)"]
    assert "G gradient norm" in titles[4] and "D gradient norm" in titles[5]
    assert titles[6:] == ["KID (all, class-averaged dashed)", "precision, recall (dashed)",
                          "density, coverage (dashed)"]
    groups = {tr.legendgroup for tr in fig.data}
    best = min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert f"best #{best.number}" in groups and any(g.startswith("worst pruned #") for g in groups)
    for tr in fig.data:  # each curve is the trial's stored evaluations
        number = int(tr.legendgroup.split("#")[1])
        evals = next(t for t in trials if t.number == number).user_attrs["evals"]
        key = tr.name.split(": ")[1]
        assert list(tr.x) == [e["step"] for e in evals if math.isfinite(e.get(key, math.nan))]
        assert list(tr.y) == pytest.approx([e[key] for e in evals if math.isfinite(e.get(key, math.nan))])
    drawn = {tr.name.split(": ")[1] for tr in fig.data if len(tr.x)}
    assert {"kid", "class_kid", "precision", "recall", "density", "coverage"} <= drawn


def test_top_table_csv_grids_and_offline_page(built) -> None:
    report, trials = built
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    top = pd.read_csv(report.out / "top_trials.csv", index_col="trial")
    assert list(top.index) == [t.number for t in complete][:5]
    assert top["objective"].tolist() == pytest.approx([t.value for t in complete][:5])
    assert {"g_cond", "d_cond", "fid", "class_fid", "cond_acc", "msssim"} <= set(top.columns)
    assert len(pd.read_csv(report.out / "trials.csv")) == 6
    for n in top.index:
        with Image.open(report.out / "grids" / f"trial_{n:05d}.png") as grid:
            assert grid.width > 16 and grid.height > 16
    page = (report.out / "index.html").read_text()
    for name in report.figures:
        assert f'id="{name}"' in page
    assert '<script src="plotly.min.js"></script>' in page and (report.out / "plotly.min.js").stat().st_size > 1e6
    assert not re.search(r'<script[^>]+src="https?:', page)  # nothing fetched from the internet
    assert "2 complete, 4 pruned" in page and "FID features: domain" in page
    assert "7 parameters" in page and "training steps" in page
    assert page.count('<img src="grids/trial_') == len(top)


def test_png_is_written_or_its_absence_explained(tiny_study: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import plotly.graph_objects as go

    def no_browser(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(go.Figure, "write_image", no_browser)
    report = build_report(load_study_config(tiny_study), tmp_path / "r", png=True)
    assert not (tmp_path / "r" / "parallel_coordinates.png").exists()
    assert any("kaleido could not render" in n for n in report.notes)
    assert "kaleido could not render" in (tmp_path / "r" / "index.html").read_text()


def test_report_replaces_only_an_earlier_report_of_the_same_study(tiny_study: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert main(["report", str(tiny_study), "--out", str(out), "--no-png", "--top", "1"]) == 0
    (out / "index.html").write_text("an older page")
    assert main(["report", str(tiny_study), "--out", str(out), "--no-png", "--top", "1"]) == 0
    assert (out / "index.html").read_text() != "an older page"  # the earlier report, replaced whole
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary or set-aside folder left
    for added in (out / "notes.txt", out / "grids" / "mine.txt"):  # what the user put into a report is theirs
        added.write_text("mine")
        capsys.readouterr()
        assert main(["report", str(tiny_study), "--out", str(out), "--no-png", "--top", "1"]) == 2
        assert "did not write" in capsys.readouterr().err and added.read_text() == "mine"
        added.unlink()
    # A folder of the user's files, the working folder, and an empty path are never replaced.
    mine, work = tmp_path / "mine", tmp_path / "work"
    for folder in (mine, work):
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text("x")
        (folder / "sub" / "b.txt").write_text("y")
    monkeypatch.chdir(work)
    capsys.readouterr()
    for argv_out, message in [(str(mine), "holds files hpsearch did not write"), (".", "is the working folder"),
                              ("", "argument --out: empty"), (str(tmp_path), "contains it")]:
        assert main(["report", str(tiny_study), "--out", argv_out, "--no-png"]) == 2, argv_out
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    for folder in (mine, work):
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]


def test_report_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path)
    open_study(load_study_config(path), create=True)  # exists, but no trial has finished
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "no finished trial yet" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["report", str(path), "--top", "0"]) == 2
    assert "--top: must be in 1..1000" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    other = write_study(tmp_path / "x", name="missing", storage=f"sqlite:///{tmp_path / 'nothing.db'}")
    assert main(["report", str(other)]) == 2
    assert "no such SQLite file" in capsys.readouterr().err and not (tmp_path / "nothing.db").exists()


def test_stored_artifact_references_cannot_leave_the_store(tiny_study: Path, tmp_path: Path) -> None:
    """A tampered database cannot make the report or export read files outside the artifact folder."""
    import json
    import shutil

    import sqlalchemy
    import yaml

    from hpsearch.search import fetch_checkpoint, read_trial

    # A copy of the study whose database says the best trial's grid and checkpoint are a file elsewhere.
    raw = yaml.safe_load(tiny_study.read_text())
    db = tmp_path / "copy.db"
    shutil.copyfile(raw["storage"].removeprefix("sqlite:///"), db)
    raw.update(storage=f"sqlite:///{db}", space=str(tiny_study.parent / raw["space"]), runs_dir=str(tmp_path / "none"))
    copy = tmp_path / "study.yaml"
    copy.write_text(yaml.safe_dump(raw))
    loaded = load_study_config(copy)
    best = open_study(loaded).best_trial
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not yours")
    hostile = str(Path("..") / ".." / secret)
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        for key, value in (("grids", {"60": hostile}), ("checkpoint_artifact", hostile)):
            conn.execute(sqlalchemy.text("UPDATE trial_user_attributes SET value_json = :v "
                                         "WHERE trial_id = :t AND key = :k"),
                         {"v": json.dumps(value), "t": best._trial_id, "k": key})  # noqa: SLF001
    engine.dispose()

    report = build_report(loaded, tmp_path / "r", png=False)
    assert not (tmp_path / "r" / "grids" / f"trial_{best.number:05d}.png").exists()
    assert any("not an artifact id" in n for n in report.notes)
    tampered = open_study(loaded).best_trial
    assert tampered.user_attrs["checkpoint_artifact"] == hostile
    tampered.user_attrs["run_dir"] = str(tmp_path / "none")  # only the artifact reference is left
    assert not fetch_checkpoint(loaded.artifacts_dir, read_trial(tampered), tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
