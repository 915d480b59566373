"""Every GPU figure from one command: the CUDA tests and the GPU benchmarks, one results file.

A GPU machine is lent only now and then, for a short while, so everything a GPU check needs runs
from here in one call, within about 20 minutes on one H100 (in this order, the headline figures first,
so that a spent budget skips the last):

1. `tests/test_cuda.py` (bf16, channels-last, fused Adam, pinning, resume on another GPU, evaluation);
2. `train_throughput.py` against the DataLoader loop, 32×32 full width, batch 64, all eight variants
   of bf16 × channels-last × compile;
3. the three generator families;
4. `eval_cost.py` at the default sample count and at 10,000;
5. `scaling.py` with 1, 2, 4 and 8 workers packed on the GPU;
6. a 16-trial digits study with `hpsearch run --gpus 0 --per-gpu 4` (which checks packing first);
7. `flops.py` and `compile_cost.py` (fraction of the bf16 rate; compile time and break-even length);
8. `train_throughput.py` at batch 256, all eight variants.

Where one call may last at most 10 minutes, run it as two: `--only cuda-tests,throughput-b64,families,
eval-default,eval-10k` and `--only scaling,study,flops,compile-cost,throughput-b256`, into two folders.

Each step runs as its own process with its own time limit, within an overall `--budget-s`; a step
that fails or runs out of time is recorded as such and the suite goes on. The output folder gets
`results.json` (the machine: GPU, driver, CUDA, torch; per step the command, exit code, seconds,
its JSON result and the Markdown rows it printed), `results.md` (the rows, ready for
benchmarks/README.md) and one log per step. A summary is printed at the end.

On a machine without CUDA, `--dry-run` checks that every step's command parses (each script's
argument parser, the study file and the `hpsearch` command line, the CUDA tests' collection)
and exits 0: CI runs it, so the suite cannot rot while no GPU is at hand. `--smoke` runs the
same steps on the CPU with tiny sizes (minutes, not for figures), to try the whole path.

Usage:
    python benchmarks/gpu_suite.py OUT_DIR [--budget-s 1200] [--only STEP,...] [--dry-run | --smoke]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import digits_study  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


@dataclass
class Step:
    """One command of the suite: a benchmark script, the CUDA tests or an `hpsearch` command."""

    name: str
    kind: str  # "script" (benchmarks/<module>.py), "pytest" or "hpsearch"
    args: list[str]
    timeout_s: int
    module: str = ""  # for kind "script"
    json_out: str = ""  # the file its --json writes, relative to the output folder

    def argv(self) -> list[str]:
        if self.kind == "script":
            return [sys.executable, str(BENCH / f"{self.module}.py"), *self.args]
        if self.kind == "pytest":
            return [sys.executable, "-m", "pytest", *self.args]
        return [sys.executable, "-m", "hpsearch.cli", *self.args]


@dataclass
class Outcome:
    """What one step did."""

    name: str
    command: str
    status: str  # ok | failed | timed out | skipped
    returncode: int | None = None
    seconds: float = 0.0
    rows: list[str] = field(default_factory=list)
    result: Any = None
    log: str = ""


def plan(out: Path, smoke: bool) -> list[Step]:
    """The suite's steps; `smoke` shrinks every size so that the whole path runs on the CPU in minutes."""
    dev = "cpu" if smoke else "cuda"
    s = (lambda full, tiny: tiny if smoke else full)  # noqa: E731 - one size or the other

    def script(name: str, module: str, timeout: int, *args: str) -> Step:
        return Step(name, "script", [*args, "--json", str(out / f"{name}.json")], timeout, module, f"{name}.json")

    throughput = ["--device", dev, "--image-size", s("32", "16"), "--width", s("1.0", "0.125"),
                  "--images", s("50000", "512"), "--num-workers", s("2", "0"), "--warmup", s("10", "1")]
    study = out / "study" / "study.yaml"  # written by `main` once every check has passed
    # The headline figures first: when the budget runs out, the last steps are the ones skipped.
    steps = [
        Step("cuda-tests", "pytest", ["-q", "-p", "no:cacheprovider", "-m", "cuda", "tests/test_cuda.py"],
             s(300, 120)),
        script("throughput-b64", "train_throughput", s(360, 120), *throughput, "--batch", "64",
               "--steps", s("100", "2"), "--rounds", s("3", "1"), "--variants", s("all", "plain,compile")),
        script("families", "train_throughput", s(120, 60), *throughput, "--batch", "64", "--steps", s("200", "2"),
               "--rounds", s("3", "1"), "--families", "dcgan,sagan,stylegan2"),
        script("eval-default", "eval_cost", s(120, 120), "--device", dev, "--rounds", s("3", "1"),
               *(["--train-steps", "5"] if smoke else [])),
        script("eval-10k", "eval_cost", s(150, 120), "--device", dev, "--rounds", s("3", "1"),
               "--set", f"metrics.samples={s(10000, 200)}", *(["--train-steps", "5"] if smoke else [])),
        script("scaling", "scaling", s(300, 240), "--device", dev, "--workers", s("1,2,4,8", "1,2"),
               "--trials-per-worker", s("2", "1"), "--steps", s("300", "4")),
        Step("study", "hpsearch", ["run", str(study), *(["--workers", "2"] if smoke else ["--gpus", "0", "--per-gpu",
             "4"]), "--data-dir", str(out / "study" / "data")], s(300, 300)),
        script("flops", "flops", s(60, 60), "--device", dev, "--models", s("quickstart,full", "quickstart"),
               "--steps", s("20", "1"), "--rounds", s("3", "1")),
        script("compile-cost", "compile_cost", s(240, 240), "--device", dev, "--models", s("quickstart,full",
               "quickstart"), "--steps", s("50", "2"), "--rounds", s("3", "1")),
        script("throughput-b256", "train_throughput", s(300, 120), *throughput, "--batch", "256",
               "--steps", s("50", "2"), "--rounds", s("3", "1"), "--variants", s("all", "plain")),
    ]
    return steps


def write_study(folder: Path, trials: int, smoke: bool) -> Path:
    """The digits quick study with `trials` trials (2 tiny ones for `smoke`), storage and outputs under `folder`."""
    small = {"train": {"steps": 4, "eval_every": 2, "checkpoint_every": 4, "log_every": 2},
             "metrics": {"samples": 40, "real_samples": 100, "classifier_steps": 50, "msssim_pairs": 5}}
    return digits_study(folder / "study.yaml", "gpu_suite_digits", f"sqlite:///{folder / 'study.db'}", folder,
                        2 if smoke else trials, enqueue=not smoke, base=small if smoke else None)


def machine() -> dict[str, Any]:
    """GPU name and memory, driver, CUDA and torch versions (driver from nvidia-smi, within 10 s)."""
    import torch

    info: dict[str, Any] = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_count=torch.cuda.device_count(), cudnn=torch.backends.cudnn.version())
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            info["driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout else None
        except (OSError, subprocess.TimeoutExpired):
            info["driver"] = None
    return info


def dry_run(step: Step) -> str | None:
    """Why `step`'s command would not parse, or None when it does (nothing is run, nothing is measured)."""
    if step.kind == "script":
        sys.path.insert(0, str(BENCH))
        module = importlib.import_module(step.module)
        try:
            module.build_parser().parse_args(step.args)
        except SystemExit as exc:
            return f"arguments refused by {step.module}.py (exit {exc.code})"
        return None
    if step.kind == "hpsearch":
        from hpsearch.cli import build_parser
        from hpsearch.errors import HPSearchError
        from hpsearch.search import load_study_config

        try:
            args = build_parser().parse_args(step.args)
            load_study_config(args.study, args.storage)
        except (SystemExit, HPSearchError) as exc:
            return f"hpsearch refuses the command: {exc}"
        return None
    collect = subprocess.run([*step.argv(), "--collect-only"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    # Without CUDA every test is skipped at collection; exit 0 (collected) or 5 (none selected) both parse.
    return None if collect.returncode in (0, 5) else f"pytest cannot collect: {collect.stdout[-500:]}"


def run_step(step: Step, out: Path, seconds_left: float) -> Outcome:
    """Run one step as its own process, its output logged to OUT/<name>.log, within its time limit."""
    command = shlex.join(step.argv())
    limit = min(step.timeout_s, seconds_left)
    if limit < 10:
        return Outcome(step.name, command, "skipped", log="the suite's budget was spent")
    log = out / f"{step.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.Popen(step.argv(), cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the step's worker processes too
            proc.wait()
            code = None
    text = log.read_text(errors="replace")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    result = None
    if step.json_out and (out / step.json_out).is_file():
        result = json.loads((out / step.json_out).read_text())
    status = "timed out" if code is None else "ok" if code == 0 else "failed"
    return Outcome(step.name, command, status, code, time.monotonic() - start, rows, result, text[-2000:])


def study_rows(out: Path, step: Step) -> list[str]:
    """The study as a row: its workers, trials by state and the wall time from the first start to the last end."""
    import optuna

    storage = f"sqlite:///{out / 'study' / 'study.db'}"
    try:
        trials = optuna.load_study(study_name="gpu_suite_digits", storage=storage).get_trials(deepcopy=False)
    except (KeyError, ValueError, RuntimeError):
        return []
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan")
    workers = " ".join(step.args[2:step.args.index("--data-dir")])
    return [f"| study ({len(trials)} trials, {workers}) | {states['COMPLETE']} complete, {states['PRUNED']} pruned, "
            f"{states['FAIL']} failed | {wall:.0f} s |"]


def summary(info: dict[str, Any], outcomes: list[Outcome]) -> str:
    head = (f"{info.get('gpu', 'no GPU')} ({info.get('gpu_memory_gib', '?')} GiB), driver {info.get('driver')}, "
            f"CUDA {info.get('cuda')}, torch {info.get('torch')}")
    lines = [f"## GPU suite — {head}", ""]
    for o in outcomes:
        lines.append(f"### {o.name}: {o.status} ({o.seconds:.0f} s)")
        lines.append(f"`{o.command}`")
        lines.extend(["", *o.rows, ""] if o.rows else [""])
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for results.json, results.md and the step logs")
    parser.add_argument("--budget-s", type=float, default=1200, help="the whole suite's time limit (default 20 min)")
    parser.add_argument("--only", help="comma-separated step names (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="check that every step's command parses; run nothing")
    mode.add_argument("--smoke", action="store_true", help="run every step on the CPU at tiny sizes (not figures)")
    return parser


def _error(message: str) -> int:
    print(f"gpu_suite: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every check first: a refused run creates no folder and no file.
    if not args.out.strip():  # Path("") would be the working folder
        return _error("OUT: empty (an unset shell variable?); name the output folder")
    args.out = Path(args.out)
    if args.out.exists() and not args.out.is_dir():
        return _error(f"{args.out}: exists and is not a folder; name a folder for the results")
    if not 1 <= args.budget_s <= 86_400:
        return _error(f"--budget-s: must be in 1..86400 seconds; got {args.budget_s:g}")
    steps = plan(args.out.resolve(), args.smoke or args.dry_run)
    if args.only is not None:
        wanted = {n.strip() for n in args.only.split(",")}
        unknown = wanted - {s.name for s in steps}
        if unknown or not args.only.strip():
            return _error(f"--only: unknown steps {sorted(unknown)}; choose from {[s.name for s in steps]}")
        steps = [s for s in steps if s.name in wanted]
    if not (args.smoke or args.dry_run):
        import torch

        if not torch.cuda.is_available():
            return _error("no CUDA device on this machine; use --dry-run to check the commands, or --smoke "
                          "to run them on the CPU at tiny sizes")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"{args.out}: cannot be used as the output folder ({exc.strerror})")
    write_study(args.out.resolve() / "study", 16, args.smoke or args.dry_run)
    if args.dry_run:
        problems = {s.name: p for s in steps if (p := dry_run(s)) is not None}
        for s in steps:
            print(f"{s.name}: {problems.get(s.name, 'parses')}: {shlex.join(s.argv())}")
        return 1 if problems else 0
    info, outcomes, deadline = machine(), [], time.monotonic() + args.budget_s
    for step in steps:
        print(f"[{step.name}] {shlex.join(step.argv())}", flush=True)
        outcome = run_step(step, args.out, deadline - time.monotonic())
        if step.name == "study" and outcome.status == "ok":
            outcome.rows = study_rows(args.out, step)
        outcomes.append(outcome)
        print(f"[{step.name}] {outcome.status} in {outcome.seconds:.0f} s", *outcome.rows, sep="\n", flush=True)
    (args.out / "results.json").write_text(json.dumps({"machine": info, "smoke": args.smoke,
                                                       "steps": [asdict(o) for o in outcomes]}, indent=2))
    (args.out / "results.md").write_text(summary(info, outcomes) + "\n")
    print("\n" + summary(info, outcomes))
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
