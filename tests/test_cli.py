"""The `hpsearch` command: train → sample end to end, and bad input → one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hpsearch.cli import main
from tests.conftest import TINY_MODEL
from tests.test_bad_input import TINY

TINY_SETS = [f"--set=model.{k}={v}" for k, v in TINY_MODEL.items()] + [
    "--set=train.batch_size=8", "--set=train.eval_every=2", "--set=train.log_every=1",
    "--set=train.checkpoint_every=2", "--set=train.grid_per_class=3",
    "--set=metrics.samples=40", "--set=metrics.classifier_steps=30", "--set=metrics.msssim_pairs=5",
]


def _config(tmp_path: Path, body: dict | None = None) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body or {"data": {"name": "digits", "image_size": 16, "channels": 1}}))
    return path


def test_train_then_sample_png_and_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", str(_config(tmp_path)), *TINY_SETS, "--out", str(out),
            "--data-dir", str(tmp_path / "data"), "--device", "cpu"]
    assert main([*args, "--steps", "4"]) == 0
    expected = {"checkpoint.pt", "config.yaml", "metrics.jsonl", "samples.png", "samples"}
    assert {p.name for p in out.iterdir()} >= expected
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["steps"] == 4 and resolved["model"]["g_kernels"] == [4, 4]
    grid = Image.open(out / "samples.png")
    assert grid.size == (2 * (3 * 17 + 1), 2 * (10 * 17 + 1))  # one row per class, 3 per row, x2 scale
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]

    assert main([*args, "--steps", "4"]) == 2  # refuses to overwrite a run without --resume
    assert "already holds a checkpoint; pass --resume" in capsys.readouterr().err
    assert main([*args, "--steps", "6", "--resume"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["steps"] == 6

    assert main(["sample", str(out / "checkpoint.pt"), "--per-class", "5", "--out", str(tmp_path / "s.npz")]) == 0
    npz = np.load(tmp_path / "s.npz")
    assert npz["images"].shape == (50, 1, 16, 16) and npz["images"].dtype == np.uint8
    assert npz["labels"].tolist() == [c for c in range(10) for _ in range(5)]
    assert main(["sample", str(out / "checkpoint.pt"), "--per-class", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (2 * 17 + 1, 10 * 17 + 1)

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in records if "fid" in r]
    assert [r["step"] for r in evaluated] == [2, 4, 6]
    metric_keys = {"fid", "class_fid", "cond_acc", "msssim", "grad_norm_g_mean", "grad_norm_g_max",
                   "grad_norm_d_mean", "grad_norm_d_max"}
    assert all(metric_keys <= r.keys() for r in evaluated)
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.pt"), "--samples", "60", "--data-dir", str(tmp_path / "data")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 6 and result["features"] == "domain"
    assert {"fid", "class_fid", "cond_acc", "msssim"} <= result.keys()


@pytest.mark.parametrize(
    ("body", "extra", "message"),
    [
        ({"model": {"colour": 1}}, [], r"run.yaml: model.colour: unknown key; allowed:"),
        ({"model": {"g_kernels": 6}}, [], r"run.yaml: model.g_kernels: must be one of \[3, 4, 5\]; got 6"),
        ({}, ["--set", "model.d_kernels=[3, 9]"], r"model.d_kernels\[1\]: must be one of \[3, 4, 5\]; got 9"),
        ({"data": {"name": "celeba"}}, [], r"data.name: must be one of \['digits', 'mnist', 'fashion_mnist'"),
        ({"data": {"name": "mnist", "download": False}}, [],
         r"mnist: train-images-idx3-ubyte.gz not found in .*; place train-images-idx3-ubyte.gz, "
         r"train-labels-idx1-ubyte.gz in"),
        ({"data": {"name": "image_folder", "root": "/nonexistent/sprites"}}, [],
         r"image_folder: /nonexistent/sprites is not a folder"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  body: dict, extra: list[str], message: str) -> None:
    out = tmp_path / "run"
    code = main(["train", str(_config(tmp_path, body)), *extra, "--out", str(out), "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("hpsearch: error: ")
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_bad_cli_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.png")]) == 2
    assert "nope.pt: checkpoint not found" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["sample", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x.png")]) == 2
    assert "junk.pt: not a readable checkpoint" in capsys.readouterr().err
    if not __import__("torch").cuda.is_available():
        quickstart = str(Path(__file__).parents[1] / "configs" / "digits.yaml")
        assert main(["train", quickstart, "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
        assert "--device cuda: no CUDA device is available" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "must end in .png (grid) or .npz" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_console_script_usage_error_is_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "hpsearch.cli", "train", "x.yaml", "--device"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["hpsearch: error: argument --device: expected one argument "
                                                "(see hpsearch train --help)"]


def test_a_run_killed_before_its_first_checkpoint_starts_again_but_a_users_folder_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`train` refuses a folder holding a run's file names without --resume (it replaced a user's config.yaml),
    except its own run folder that never reached a checkpoint (killed early: nothing to resume)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    args = ["train", str(config), "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"),
            "--device", "cpu"]
    assert main(args) == 0
    for name in ("checkpoint.pt", "best_generator.pt"):
        (tmp_path / "run" / name).unlink(missing_ok=True)  # as if killed before its first checkpoint
    assert main(args) == 0 and (tmp_path / "run" / "checkpoint.pt").is_file()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.yaml").write_text("mine: 1\n")
    capsys.readouterr()
    assert main([*args[:3], str(theirs), *args[4:]]) == 2
    assert "already holds config.yaml" in capsys.readouterr().err
    assert (theirs / "config.yaml").read_text() == "mine: 1\n"
