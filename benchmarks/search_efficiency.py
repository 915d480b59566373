"""Search efficiency on digits: pruners vs. no pruning, TPE vs. random, and platform overhead.

Studies of `--trials` trials each on the tiny space (`studies/digits_quick.yaml`'s base config,
without its enqueued best), one after the other in this process, SQLite storage in `--workdir`:

- **TPE, no pruning** — the reference: its best objective, and the training steps it spent
  until it first reached that value;
- **TPE + each pruner in `--pruners`** — the training steps it needs to reach the reference's
  best (target: at most half of the reference's steps); with `--equal-steps` it runs until it
  has spent the reference's steps, not for as many trials;
- **random, no pruning** — TPE against random sampling at an equal number of trials.

The objective is itself a noisy measurement (class FID from a few hundred samples), and two bests
closer than its noise cannot be told apart. So the reference's best generator is evaluated again
with `--noise-seeds` sampling seeds, and the steps to the reference's best are also counted to
within one standard deviation of it, for the reference and for each pruned study.

Each is run for every seed in `--seeds` (the seed of the sampler; the training seed is the base
config's). Steps spent are counted in trial order: a trial contributes the last step it
reported (a pruned trial stops early). A study already finished in `--workdir` is reused, so
one reference serves several pruners and an interrupted benchmark resumes.

Overhead: the enqueued configuration is run as a trial (Optuna, SQLite, artifacts, user
attributes, sample grids, checkpoint upload) and directly (training loop and evaluator only),
alternating `--rounds` times; the overhead is the trial's extra wall time, the trial's time
being its start-to-completion time in the storage (a worker's one-time start, loading the
dataset and the study, is not per trial).

A pruner is written `NAME[:KEY=VALUE,...]` with the keys of a study file's `pruner:` section,
e.g. `hyperband`, `hyperband:min_steps=500`, `extrapolate:min_steps=500,n_startup_trials=1`.

Usage:
    python benchmarks/search_efficiency.py [--trials 16] [--seeds 0] [--rounds 3] [--json OUT.json]
    python benchmarks/search_efficiency.py --parts pruning --trials 20 --seeds 0,1 \\
        --pruners hyperband extrapolate:min_steps=500,n_startup_trials=1 --workdir runs/bench-search
    python benchmarks/search_efficiency.py --parts overhead [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from _common import digits_study, write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.checkpoint import CHECKPOINT_NAME
from hpsearch.config import replace_sections
from hpsearch.data import load_dataset
from hpsearch.devices import resolve_device
from hpsearch.generation import load_generator
from hpsearch.metrics import Evaluator
from hpsearch.search import load_study_config, open_study, read_trial, run_worker
from hpsearch.training import train

ROOT = Path(__file__).resolve().parents[1]


def _study_file(folder: Path, name: str, sampler: str, pruner: dict[str, Any], trials: int, seed: int,
                enqueue: bool = False) -> Path:
    # Without `enqueue`: the known best would make every study find it at trial 0.
    return digits_study(folder / f"{name}.yaml", name, f"sqlite:///{folder / 'bench.db'}", folder / name, trials,
                        enqueue=enqueue, sampler={"name": sampler, "seed": seed}, pruner=pruner)


def parse_pruner(spec: str) -> dict[str, Any]:
    """`hyperband:min_steps=750,reduction_factor=2` → a study file's `pruner:` section."""
    name, _, options = spec.partition(":")
    pruner: dict[str, Any] = {"name": name}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"pruner {spec!r}: {item!r} is not KEY=VALUE")
        pruner[key] = yaml.safe_load(value)
    return pruner


def _label(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", spec).strip("_")


def _trial_order(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _reports(study: optuna.Study) -> Iterator[tuple[int, float]]:
    """Every reported objective with the training steps spent up to it, in trial order."""
    spent = 0
    for trial in _trial_order(study):
        for step, value in sorted(trial.intermediate_values.items()):
            yield spent + step, value
        spent += max(trial.intermediate_values, default=0)


def _steps_to_reach(study: optuna.Study, target: float) -> int | None:
    """Training steps spent, in trial order, until a reported objective first reaches `target`."""
    return next((spent for spent, value in _reports(study) if value <= target), None)


def _best_within(study: optuna.Study, budget: int) -> float:
    """The best objective reported within the first `budget` training steps, in trial order."""
    return min((value for spent, value in _reports(study) if spent <= budget), default=math.inf)


def _total_steps(study: optuna.Study) -> int:
    return sum(max(t.intermediate_values, default=0) for t in study.get_trials(deepcopy=False))


def _run(folder: Path, data_dir: Path, name: str, sampler: str, pruner: dict[str, Any], trials: int,
         seed: int, budget_steps: int | None = None, max_trials: int | None = None) -> optuna.Study:
    """The study `name`, run to `trials` finished trials (or taken as it is when already finished).

    With `budget_steps`, trials are added one at a time until the study has spent that many
    training steps (or has `max_trials`), so a pruned study gets the budget a study without
    pruning spends on `trials` trials.
    """
    loaded = load_study_config(_study_file(folder, name, sampler, pruner, trials, seed))
    start = time.perf_counter()
    run_worker(loaded, data_dir, "auto")
    study = open_study(loaded)
    while budget_steps and _total_steps(study) < budget_steps and len(study.trials) < (max_trials or math.inf):
        run_worker(loaded, data_dir, "auto", n_trials=len(study.trials) + 1)
    print(f"{name}: {len(study.trials)} trials, {_total_steps(study)} steps ({time.perf_counter() - start:.0f} s "
          f"in this run), best {study.best_value:.3f}", flush=True)
    return study


def _noise(data_dir: Path, study: optuna.Study, seeds: int) -> dict[str, Any]:
    """The objective's own noise: the best trial's final generator evaluated with `seeds` sampling seeds.

    Two studies whose bests differ by less than this cannot be told apart by the measurement,
    so steps to the reference's best are also counted to within one standard deviation.
    """
    best = read_trial(study.best_trial)
    device = resolve_device("auto")
    generator = load_generator(Path(best.run_dir or ".") / CHECKPOINT_NAME, device)
    cfg, objective = generator.config, str(best.objective)
    dataset = load_dataset(cfg.data, data_dir)
    values = [Evaluator(replace_sections(cfg, train={"seed": s}), dataset, device,
                        data_dir / "cache")(generator.step, generator.generator)[objective]
              for s in range(seeds)]
    mean = statistics.mean(values)
    return {"values": values, "mean": mean, "relative_sd": statistics.stdev(values) / mean}


def _overhead(folder: Path, data_dir: Path, rounds: int) -> dict[str, Any]:
    """A trial's own wall time (start to completion in the storage) vs. the same training and
    evaluation run directly, alternating; the worker's one-time start (dataset, study) is excluded."""
    name = f"overhead_{time.strftime('%Y%m%d%H%M%S')}"  # a new study each time, even in a reused workdir
    loaded = load_study_config(_study_file(folder, name, "tpe", {"name": "none"}, 10_000, 0, enqueue=True))
    device = resolve_device("auto")
    dataset = load_dataset(loaded.base_config.data, data_dir)
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
        train(cfg, dataset, folder / name / f"direct_{r}", device, on_eval=[evaluator], progress=False)
        direct_s.append(time.perf_counter() - start)
    t, d = statistics.median(trial_s), statistics.median(direct_s)
    return {"trial_s": trial_s, "direct_s": direct_s, "overhead": t / d - 1,
            "overhead_per_round": [a / b - 1 for a, b in zip(trial_s, direct_s, strict=True)]}


def _device() -> str:
    return (torch.cuda.get_device_name() if torch.cuda.is_available() else
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")


def _reference(folder: Path, data_dir: Path, trials: int, seed: int) -> tuple[optuna.Study, dict[str, Any]]:
    study = _run(folder, data_dir, f"tpe_none_seed{seed}", "tpe", {"name": "none"}, trials, seed)
    best = study.best_value
    return study, {"best": best, "best_trial": study.best_trial.number, "steps_to_best": _steps_to_reach(study, best),
                   "total_steps": _total_steps(study)}


def _pruning(folder: Path, data_dir: Path, trials: int, seed: int, pruners: list[str],
             noise_seeds: int, equal_steps: bool) -> dict[str, Any]:
    """TPE without pruning (the reference) against TPE with each pruner, on as many trials or (with
    `equal_steps`) as many training steps: steps to the reference's best (exactly, and to within the
    objective's noise), and each study's best at equal steps."""
    reference, result = _reference(folder, data_dir, trials, seed)
    noise = _noise(data_dir, reference, noise_seeds)
    target, ref_steps = result["best"], result["steps_to_best"]
    near = target * (1 + noise["relative_sd"])
    ref_near = _steps_to_reach(reference, near)
    compared: dict[str, Any] = {}
    for spec in pruners:
        study = _run(folder, data_dir, f"tpe_{_label(spec)}_seed{seed}", "tpe", parse_pruner(spec), trials, seed,
                     budget_steps=result["total_steps"] if equal_steps else None, max_trials=3 * trials)
        steps, steps_near, total = _steps_to_reach(study, target), _steps_to_reach(study, near), _total_steps(study)
        compared[spec] = {
            "trials": len(study.trials), "total_steps": total,
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            "steps_to_reference_best": steps, "step_ratio": _ratio(steps, ref_steps),
            "steps_to_within_noise": steps_near, "step_ratio_within_noise": _ratio(steps_near, ref_near),
            "best": study.best_value, "best_trial": study.best_trial.number,
            # at equal steps: this study's best after the reference's steps to its best
            "best_at_reference_steps_to_best": _best_within(study, ref_steps),
            "params_of_best": study.best_trial.params}
    return {"reference": {**result, "steps_to_within_noise": ref_near, "within_noise_target": near,
                          "params_of_best": reference.best_trial.params, "noise": noise},
            "pruners": compared}


def _ratio(steps: int | None, reference: int | None) -> float:
    return steps / reference if steps is not None and reference else math.nan


def _random(folder: Path, data_dir: Path, trials: int, seed: int) -> dict[str, Any]:
    """Random sampling without pruning against the reference's (TPE's) best at equal trials."""
    _, reference = _reference(folder, data_dir, trials, seed)
    study = _run(folder, data_dir, f"random_none_seed{seed}", "random", {"name": "none"}, trials, seed)
    return {"tpe_best": reference["best"], "random_best": study.best_value,
            "random_best_trial": study.best_trial.number}


def _summary(per_seed: dict[int, dict[str, Any]], pruners: list[str]) -> dict[str, Any]:
    """Per pruner over seeds: the median step ratio, seeds that reached the reference's best, seeds
    within 0.5x."""
    summary: dict[str, Any] = {}
    for spec in pruners:
        rows = [r["pruning"]["pruners"][spec] for r in per_seed.values() if "pruning" in r]
        for key in ("step_ratio", "step_ratio_within_noise"):
            ratios = [r[key] if math.isfinite(r[key]) else math.inf for r in rows]
            if ratios:
                summary.setdefault(spec, {})[key] = {
                    "median": statistics.median(ratios), "seeds": len(ratios),
                    "reached": sum(math.isfinite(x) for x in ratios), "within_half": sum(x <= 0.5 for x in ratios)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", default="0", help="comma-separated sampler seeds (default 0)")
    parser.add_argument("--pruners", nargs="*", default=["hyperband"],
                        help="pruners to compare with no pruning, NAME[:KEY=VALUE,...] (default hyperband)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--equal-steps", action="store_true",
                        help="run each pruned study until it has spent the reference's training steps (up to "
                             "3x the trials), not for as many trials")
    parser.add_argument("--noise-seeds", type=int, default=8,
                        help="sampling seeds to measure the objective's noise on the reference's best (default 8)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path, help="keep the studies here and reuse finished ones "
                        "(default: a new temporary folder)")
    parser.add_argument("--parts", default="pruning,random,overhead",
                        help="comma-separated parts to run: pruning, random, overhead (default all)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = set(parts) - {"pruning", "random", "overhead"}
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from pruning, random, overhead")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        for spec in args.pruners:
            parse_pruner(spec)
    except ValueError as exc:
        parser.error(str(exc))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="hpsearch-search-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    data_dir = folder / "data"
    result: dict[str, Any] = {"device": _device(), "torch": torch.__version__, "optuna": optuna.__version__,
                              "trials": args.trials, "seeds": seeds, "per_seed": {}}
    runs = [(part, seed) for part in parts for seed in ([None] if part == "overhead" else seeds)]
    for part, seed in runs:
        # each part's figures are printed (and written) as soon as it ends, seed by seed
        if seed is None:
            result["overhead"] = _overhead(folder, data_dir, args.rounds)
        elif part == "pruning":
            result["per_seed"].setdefault(seed, {})[part] = _pruning(
                folder, data_dir, args.trials, seed, args.pruners, args.noise_seeds, args.equal_steps)
        else:
            result["per_seed"].setdefault(seed, {})[part] = _random(folder, data_dir, args.trials, seed)
        result["summary"] = _summary(result["per_seed"], args.pruners)
        print(json.dumps(result, indent=2), flush=True)
        write_json(args.json, result)


if __name__ == "__main__":
    main()
