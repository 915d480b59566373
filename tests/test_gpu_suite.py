"""benchmarks/gpu_suite.py: every step's command parses without a GPU, and a step's results reach both files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_suite  # noqa: E402  (benchmarks/ is not a package)


def test_dry_run_parses_every_step_and_exits_0(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), str(tmp_path), "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    names = [s.name for s in gpu_suite.plan(tmp_path, smoke=False)]
    lines = run.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == names
    assert all(": parses: " in line for line in lines)
    assert {"cuda-tests", "throughput-b64", "throughput-b256", "families", "eval-default", "eval-10k",
            "scaling", "study"} <= set(names)


def test_the_full_plan_asks_for_what_the_figures_need(tmp_path: Path) -> None:
    steps = {s.name: s for s in gpu_suite.plan(tmp_path, smoke=False)}
    assert "--variants" in steps["throughput-b64"].args and "all" in steps["throughput-b64"].args
    assert steps["scaling"].args[steps["scaling"].args.index("--workers") + 1] == "1,2,4,8"
    assert steps["study"].args[2:6] == ["--gpus", "0", "--per-gpu", "4"]
    assert "metrics.samples=10000" in steps["eval-10k"].args
    assert sum(s.timeout_s for s in steps.values()) <= 40 * 60  # the budget (20 min) cuts it in any case


@pytest.mark.parametrize(("step", "reason"), [
    (gpu_suite.Step("bad-flag", "script", ["--no-such-flag"], 10, "train_throughput"),
     "arguments refused by train_throughput.py (exit 2)"),
    (gpu_suite.Step("bad-variant", "script", ["--variants", "bf16+turbo"], 10, "train_throughput"),
     "arguments refused by train_throughput.py (exit 2)"),
    (gpu_suite.Step("bad-study", "hpsearch", ["run", "/nonexistent/study.yaml"], 10),
     "hpsearch refuses the command: /nonexistent/study.yaml: "),
    (gpu_suite.Step("bad-model", "script", ["--models", "quickstart,bogus"], 10, "compile_cost"),
     "arguments refused by compile_cost.py (exit 2)"),
    (gpu_suite.Step("good-study", "hpsearch", ["run", "studies/digits_quick.yaml"], 10), None),
    (gpu_suite.Step("good-script", "script", ["--variants", "all"], 10, "train_throughput"), None),
], ids=lambda s: s.name if isinstance(s, gpu_suite.Step) else "")
def test_dry_run_names_a_command_that_would_not_parse(step: gpu_suite.Step, reason: str | None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    found = gpu_suite.dry_run(step)
    assert (found is None) if reason is None else (found is not None and found.startswith(reason)), found


def test_smoke_step_writes_its_rows_and_json_into_both_result_files(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), str(tmp_path), "--smoke",
                          "--only", "flops"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    [step] = results["steps"]
    assert step["name"] == "flops" and step["status"] == "ok" and results["machine"]["torch"]
    [row] = step["result"]["rows"]
    assert 0 < row["fraction"] < 1.5 and row["gflop_per_step"] > 0
    assert step["rows"] and step["rows"][0] in (tmp_path / "results.md").read_text()


def test_without_cuda_a_real_run_is_refused_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_suite.main([str(tmp_path), "--only", "flops"]) == 2
    assert not (tmp_path / "results.json").exists()


def test_an_output_folder_that_is_a_file_is_refused_in_one_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert gpu_suite.main([str(tmp_path / "f"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpu_suite: error: ")
    assert "exists and is not a folder" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["{out}", "--budget-s", "-5", "--dry-run"], "--budget-s: must be in 1..86400"),
    (["{out}", "--only", "", "--dry-run"], "--only: unknown steps"),
    (["{out}", "--only", "flops,nope", "--dry-run"], "--only: unknown steps ['nope']"),
    (["", "--dry-run"], "OUT: empty"),
    (["{out}", "--only", "flops"], "no CUDA device"),
])
def test_a_refused_run_is_one_line_and_creates_nothing(argv: list[str], message: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: the output folder and OUT/study/study.yaml were created before --only or the CUDA check
    refused, --budget-s -5 and --only '' were accepted, and '' wrote into the working folder."""
    import torch

    if "flops" in argv and "--dry-run" not in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert gpu_suite.main([a.format(out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpu_suite: error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []
