"""A whole study on CPU: values, intermediate values, user attributes and artifacts in the storage."""

from __future__ import annotations

import math
import os
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from PIL import Image

from hpsearch.cli import main
from hpsearch.search import load_study_config, open_study
from tests.search.helpers import write_study

EVAL_KEYS = {"fid", "class_fid", "cond_acc", "msssim", "grad_norm_g_mean", "grad_norm_g_max", "grad_norm_d_mean",
             "grad_norm_d_max", "loss_d", "loss_g", "step", "msssim_real", "collapse", "kid", "class_kid", "precision",
             "recall", "density", "coverage", "class_precision", "class_recall", "class_density", "class_coverage",
             "class_coverage_min", "class_density_coverage_max"}


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "search-data"  # shared: the classifier trains once


def test_study_end_to_end_on_cpu(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study_path = write_study(tmp_path)
    raw = yaml.safe_load(study_path.read_text())
    raw["base"]["train"]["grid_per_class"] = 3  # the search draws the grids `train` would
    study_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["run", str(study_path), "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    assert "6 trials" in capsys.readouterr().out

    study = open_study(load_study_config(study_path))
    trials = study.get_trials()
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
    states = [t.state for t in trials]
    assert TrialState.FAIL not in states and TrialState.RUNNING not in states
    bad = trials[2]  # the enqueued learning rate of 1
    assert bad.params["g_lr"] == 1.0 and bad.state == TrialState.PRUNED
    assert "failure" in bad.user_attrs or len(bad.intermediate_values) < 3  # diverged, or cut short

    for t in [t for t in trials if t.state == TrialState.COMPLETE]:
        assert sorted(t.intermediate_values) == [20, 40, 60]
        assert t.value == min(t.intermediate_values.values())  # best over the evaluations
        attrs = t.user_attrs
        expected = {"config", "evals", "wall_s", "storage_s", "device", "seed", "run_dir", "grids",
                    "checkpoint_artifact", "best_artifact", "best_step", "best_value", "record_version", "noise"}
        assert expected <= attrs.keys()
        # The kept generator scored again on 3 batches drawn with other seeds: the objective's own noise.
        assert len(attrs["noise"]) == 3 and len(set(attrs["noise"])) == 3 and t.value not in attrs["noise"]
        assert all(math.isfinite(v) and v > 0 for v in attrs["noise"])
        assert attrs["config"]["model"]["g_cond"] == t.params["g_cond"]
        assert 0 < attrs["storage_s"] < attrs["wall_s"]
        assert [e["step"] for e in attrs["evals"]] == [20, 40, 60]
        assert all(EVAL_KEYS <= e.keys() for e in attrs["evals"])
        assert [e["class_fid"] for e in attrs["evals"]] == [t.intermediate_values[s] for s in (20, 40, 60)]
        metas = {m.artifact_id: m for m in get_all_artifact_meta(t, storage=study._storage)}  # noqa: SLF001
        assert set(attrs["grids"].values()) | {attrs["checkpoint_artifact"], attrs["best_artifact"]} == set(metas)
        # The value is that of the kept best generator: the evaluation with the lowest objective.
        assert attrs["best_value"] == t.value and t.intermediate_values[attrs["best_step"]] == t.value
        assert all(metas[a].mimetype == "image/png" for a in attrs["grids"].values())
        assert all((tmp_path / "artifacts" / a).is_file() for a in metas)
        with Image.open(tmp_path / "artifacts" / attrs["grids"]["60"]) as grid:  # 10 classes × 3, 16 px, 1 px gaps
            assert grid.width * (10 * 17 + 1) == grid.height * (3 * 17 + 1)

    capsys.readouterr()
    assert main(["status", str(study_path)]) == 0
    out = capsys.readouterr().out
    assert "the objective's own noise: class_fid SD between evaluation batches" in out
    assert "the lowest single-run value" in out and "re-measured:" in out

    # A second `run` with more trials resumes the same study.
    assert main(["run", str(study_path), "--data-dir", str(data_dir), "--device", "cpu", "--n-trials", "7"]) == 0
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}").trials) == 7

    # Export the best trial and sample from it.
    out = tmp_path / "best"
    assert main(["export", str(study_path), "--out", str(out)]) == 0
    assert main(["sample", str(out / "checkpoint.pt"), "--per-class", "2", "--out", str(tmp_path / "b.png")]) == 0
    assert (out / "config.yaml").is_file() and os.path.getsize(tmp_path / "b.png") > 0


def test_bad_study_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, name="../escape")
    assert main(["run", str(path)]) == 2
    assert "study: must be 1-100 letters" in capsys.readouterr().err
    path = write_study(tmp_path, enqueue=[{"z_dim": 12}])
    assert main(["run", str(path)]) == 2
    assert "enqueue[0]" in capsys.readouterr().err
    path = write_study(tmp_path, storage="postgresql+psycopg2://user:s3cret@127.0.0.1:1/nope")
    assert main(["status", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot be opened" in err and "s3cret" not in err and "user:***@" in err


@pytest.mark.parametrize("key", ["artifacts", "runs_dir"])
def test_unwritable_output_folder_is_one_line_and_nothing_written(tmp_path: Path, key: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write_study(tmp_path, **{key: str(blocker / "inside")})
    assert main(["run", str(path), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert f"{key} {blocker / 'inside'}: cannot be created: {blocker} is a file" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study.db").exists()
