"""Search efficiency on digits: Hyperband vs. no pruning, TPE vs. random, and platform overhead.

Three studies of `--trials` trials each on the tiny space (`studies/digits_quick.yaml`'s base
config), run one after the other in this process with SQLite storage in a temporary folder:

- **TPE, no pruning** — the reference: its best objective, and the training steps it spent
  until it first reached that value;
- **TPE + Hyperband** — the training steps it needs to reach the reference's best (target:
  at most half of the reference's steps);
- **random, no pruning** — TPE against random sampling at an equal number of trials.

Steps spent are counted in trial order: a trial contributes the last step it reported (a
pruned trial stops early). Overhead: the enqueued configuration is run as a trial (Optuna,
SQLite, artifacts, user attributes, sample grids, checkpoint upload) and directly (training
loop and evaluator only), alternating `--rounds` times; the overhead is the trial's extra
wall time, the trial's time being its start-to-completion time in the storage (a worker's
one-time start, loading the dataset and the study, is not per trial).

Usage:
    python benchmarks/search_efficiency.py [--trials 16] [--seed 0] [--rounds 3] [--json OUT.json]
    python benchmarks/search_efficiency.py --parts pruning,random [--trials 20]
    python benchmarks/search_efficiency.py --overhead-only [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from _common import write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.data import load_dataset
from hpsearch.metrics import Evaluator
from hpsearch.search.study import load_study_config, open_study
from hpsearch.search.worker import run_worker
from hpsearch.training import train

ROOT = Path(__file__).resolve().parents[1]


def _study_file(folder: Path, name: str, sampler: str, pruner: str, trials: int, seed: int,
                enqueue: bool = False) -> Path:
    base = yaml.safe_load((ROOT / "studies" / "digits_quick.yaml").read_text())
    if not enqueue:  # the known best would make every study find it at trial 0
        base.pop("enqueue", None)
    base.update({"study": name, "space": str(ROOT / "search_spaces" / "tiny.yaml"),
                 "sampler": {**base["sampler"], "name": sampler, "seed": seed}, "pruner": {"name": pruner},
                 "stop": {"n_trials": trials}, "storage": f"sqlite:///{folder / 'bench.db'}",
                 "artifacts": str(folder / name / "artifacts"), "runs_dir": str(folder / name / "trials")})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _steps_to_reach(study: optuna.Study, target: float) -> int | None:
    """Training steps spent, in trial order, until a reported objective first reaches `target`."""
    spent = 0
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        for step, value in sorted(trial.intermediate_values.items()):
            if value <= target:
                return spent + step
        spent += max(trial.intermediate_values, default=0)
    return None


def _total_steps(study: optuna.Study) -> int:
    return sum(max(t.intermediate_values, default=0) for t in study.get_trials(deepcopy=False))


def _run(folder: Path, data_dir: Path, name: str, sampler: str, pruner: str, trials: int, seed: int) -> optuna.Study:
    loaded = load_study_config(_study_file(folder, name, sampler, pruner, trials, seed))
    start = time.perf_counter()
    run_worker(loaded, data_dir, "auto")
    study = open_study(loaded)
    print(f"{name}: {len(study.trials)} trials in {time.perf_counter() - start:.0f} s, best {study.best_value:.3f}",
          flush=True)
    return study


def _overhead(folder: Path, data_dir: Path, rounds: int) -> dict[str, Any]:
    """A trial's own wall time (start to completion in the storage) vs. the same training and
    evaluation run directly, alternating; the worker's one-time start (dataset, study) is excluded."""
    loaded = load_study_config(_study_file(folder, "overhead", "tpe", "none", 10_000, 0, enqueue=True))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = load_dataset(loaded.base.data, data_dir)
    fixed = optuna.trial.FixedTrial(loaded.cfg.enqueue[0])
    cfg = loaded.space.suggest(fixed, loaded.cfg.base, loaded.n_blocks)  # type: ignore[arg-type]
    trial_s, direct_s = [], []
    for r in range(rounds):
        # The enqueued configuration runs once; later rounds repeat it with the same parameters.
        if r:
            open_study(loaded).enqueue_trial(loaded.cfg.enqueue[0])
        run_worker(loaded, data_dir, "auto", n_trials=r + 1)
        trial = open_study(loaded).trials[r]
        assert trial.datetime_start and trial.datetime_complete
        trial_s.append((trial.datetime_complete - trial.datetime_start).total_seconds())
        start = time.perf_counter()
        evaluator = Evaluator(cfg, dataset, device, data_dir / "cache")
        train(cfg, dataset, folder / f"direct_{r}", device, on_eval=[evaluator], progress=False)
        direct_s.append(time.perf_counter() - start)
    t, d = statistics.median(trial_s), statistics.median(direct_s)
    return {"trial_s": trial_s, "direct_s": direct_s, "overhead": t / d - 1,
            "overhead_per_round": [a / b - 1 for a, b in zip(trial_s, direct_s, strict=True)]}


def _device() -> str:
    return (torch.cuda.get_device_name() if torch.cuda.is_available() else
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")


def _pruning(folder: Path, data_dir: Path, trials: int, seed: int) -> dict[str, Any]:
    """TPE without pruning (the reference) against TPE + Hyperband: steps to the reference's best."""
    reference = _run(folder, data_dir, "tpe_nopruning", "tpe", "none", trials, seed)
    pruned = _run(folder, data_dir, "tpe_hyperband", "tpe", "hyperband", trials, seed)
    target = reference.best_value
    ref_steps, hb_steps = _steps_to_reach(reference, target), _steps_to_reach(pruned, target)
    return {"reference_best": target, "reference_best_trial": reference.best_trial.number,
            "reference_steps_to_best": ref_steps, "reference_total_steps": _total_steps(reference),
            "hyperband_steps_to_reference_best": hb_steps, "hyperband_best": pruned.best_value,
            "hyperband_best_trial": pruned.best_trial.number, "hyperband_total_steps": _total_steps(pruned),
            "hyperband_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in pruned.trials),
            "hyperband_step_ratio": (hb_steps / ref_steps) if hb_steps and ref_steps else math.nan,
            "tpe_best": target}


def _random(folder: Path, data_dir: Path, trials: int, seed: int) -> dict[str, Any]:
    """Random sampling without pruning, to hold against the reference's (TPE's) best at equal trials."""
    study = _run(folder, data_dir, "random_nopruning", "random", "none", trials, seed)
    return {"random_best": study.best_value, "random_best_trial": study.best_trial.number}


PARTS = {"pruning": _pruning, "random": _random}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--parts", default="pruning,random,overhead",
                        help="comma-separated parts to run: pruning, random, overhead (default all)")
    parser.add_argument("--overhead-only", action="store_true", help="same as --parts overhead")
    args = parser.parse_args()
    parts = ["overhead"] if args.overhead_only else args.parts.split(",")
    unknown = set(parts) - {*PARTS, "overhead"}
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {[*PARTS, 'overhead']}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-search-bench-"))
    data_dir = folder / "data"
    result: dict[str, Any] = {"device": _device(), "trials": args.trials, "seed": args.seed}
    for part in parts:  # each part's figures are printed (and written) as soon as it ends
        result.update(_overhead(folder, data_dir, args.rounds) if part == "overhead"
                      else PARTS[part](folder, data_dir, args.trials, args.seed))
        print(json.dumps(result, indent=2), flush=True)
        write_json(args.json, result)


if __name__ == "__main__":
    main()
