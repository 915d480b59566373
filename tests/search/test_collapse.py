"""Collapse is a recorded failure: flagged against the real data's within-class MS-SSIM, pruned or shown.

The data are random-noise images, whose within-class MS-SSIM is about 0: any generator a
few steps old draws smooth, alike images, far above it. So every evaluation of these runs
is flagged, on a real study in SQLite, without a mocked metric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from PIL import Image

from hpsearch.cli import main
from hpsearch.reports import build_report
from hpsearch.search import Confirmation, load_study_config, open_study, read_trials, single_runs
from hpsearch.search.record import TrialRecord
from hpsearch.stats import rank
from tests.search.helpers import GOOD, write_study


@pytest.fixture(scope="module")
def noise_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("noise") / "images"
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / f"class{c}" / f"{i}.png")
    return root


def _study(tmp_path: Path, noise_folder: Path, collapse: str) -> Path:
    path = write_study(tmp_path, enqueue=[GOOD], stop={"n_trials": 1}, pruner={"name": "none"}, collapse=collapse)
    raw = yaml.safe_load(path.read_text())
    raw["base"]["data"] = {"name": "image_folder", "root": str(noise_folder), "image_size": 16}
    raw["base"]["metrics"].update(samples=60, real_samples=60, classifier_steps=20)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _run(path: Path, tmp_path: Path) -> optuna.trial.FrozenTrial:
    assert main(["run", str(path), "--data-dir", str(tmp_path / "data"), "--device", "cpu"]) == 0
    [trial] = open_study(load_study_config(path)).get_trials()
    return trial


def test_collapse_prunes_the_trial_when_the_study_says_so(tmp_path: Path, noise_folder: Path) -> None:
    trial = _run(_study(tmp_path, noise_folder, "prune"), tmp_path)
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["failure"].startswith("collapse at step 20: within-class MS-SSIM")
    flag = trial.user_attrs["collapse"]  # shown by the dashboard with the trial's attributes
    assert flag["step"] == 20 and flag["msssim"] > flag["msssim_real"] + 0.2
    assert flag["reason"].startswith(f"within-class MS-SSIM {flag['msssim']:.3f} above the real")
    assert [e["step"] for e in trial.user_attrs["evals"]] == [20]  # stopped at the first collapsed evaluation


def test_a_flagged_collapse_is_shown_by_status_report_and_findings(tmp_path: Path, noise_folder: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path, noise_folder, "flag")
    trial = _run(path, tmp_path)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["collapse"]["step"] == 60
    [record] = read_trials(open_study(load_study_config(path)))
    assert record.kept_collapsed("class_fid") and all(e["collapse"] for e in record.evals)

    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"best: trial 0 = {trial.value:.4g} — COLLAPSED" in out
    assert "the lowest single-run value — COLLAPSED" in out

    report = build_report(load_study_config(path), tmp_path / "report", png=False)
    assert bool(report.top.loc[0, "collapse"]) is True
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<td>COLLAPSED</td>" in page and "the lowest single-run value — COLLAPSED" in page


def _source(number: int, value: float, d_cond: str) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.COMPLETE, value=value, params={"d_cond": d_cond}, config={})


def test_findings_never_name_a_collapsed_configuration_the_winner_without_the_flag() -> None:
    sources = {"trial 0 (d_cond=acgan)": _source(0, 4.0, "acgan"), "trial 1 (d_cond=projection)":
               _source(1, 5.0, "projection")}
    ranking = rank({"trial 0 (d_cond=acgan)": [4.0, 4.2, 3.9], "trial 1 (d_cond=projection)": [5.0, 5.1, 5.3]})
    found = Confirmation("class_fid", ranking, {}, sources, 6, 6, 200, {"trial 0 (d_cond=acgan)": 2})
    first, second = found.sentences()
    assert first.startswith("trial 0 (d_cond=acgan): class_fid") and "the lowest mean" in first
    assert first.endswith("— COLLAPSED in 2 of 3 runs (within-class MS-SSIM above the real images' by more than "
                          "the margin, or a class's samples piled on few of its real images): not a usable winner "
                          "whatever its value")
    assert "COLLAPSED" not in second


def test_single_runs_without_measured_noise_say_so() -> None:
    singles = single_runs([_source(0, 4.0, "acgan"), _source(1, 5.0, "projection")], "class_fid")
    lines = singles.sentences()
    assert singles.noise is None and "was not measured" in lines[0]
    assert lines[2] == "trial 1: class_fid 5, +1 from trial 0"
