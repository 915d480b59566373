"""Confirmation runs on digits: how far the single-run ranking of a search holds, and what confirming costs.

Runs `studies/digits_quick.yaml` (the tiny space, TPE + Hyperband) for `--trials` trials, then
`hpsearch confirm --top K --seeds N` on it, both through the CLI in this process, into
`--workdir` (SQLite). Reports:

- each confirmed configuration's mean and 95% interval over its N runs (each run measured on
  an evaluation batch independent of the one that chose its generator), and its difference
  from the confirmed best;
- whether the search's best stayed best, and whether the confirmed winner can be told apart
  from the others;
- confirmation time as a share of the search's time;
- per configuration, the search's single-run value against its confirmed mean: how optimistic
  single-run values are (they are the minimum over evaluations, on the batch that chose them);
- the search's own noise measure (each completed trial's kept generator re-scored on
  `noise_seeds` other batches) beside the training-seed spread the confirmation measured.

An existing `--workdir` is reused (the search and the confirmation resume), so an interrupted
benchmark goes on where it stopped; the times are then those of this invocation only.

Usage:
    python benchmarks/confirmation.py [--trials 12] [--top 3] [--seeds 5] [--workdir runs/bench-confirm]
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from _common import write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.cli import main as cli
from hpsearch.search import confirmation, load_study_config, open_study, read_trials
from hpsearch.stats import pooled_noise

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, default=ROOT / "studies" / "digits_quick.yaml")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-confirm"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    study_file, json_out = args.study.resolve(), args.json.resolve() if args.json else None
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)  # the study's runs/ folder, database and artifacts go here
    data = ["--data-dir", "data", "--device", "cpu"]

    start = time.perf_counter()
    assert cli(["run", str(study_file), "--n-trials", str(args.trials), *data]) == 0
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    assert cli(["confirm", str(study_file), "--top", str(args.top), "--seeds", str(args.seeds), *data]) == 0
    confirm_s = time.perf_counter() - start

    loaded = load_study_config(study_file)
    study = open_study(loaded)
    found = confirmation(loaded, study)
    assert found is not None and found.ranking
    trials = read_trials(study)
    search_best = min((t for t in trials if t.value is not None), key=lambda t: t.objective_value)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "trials": len(trials), "top": args.top, "seeds": args.seeds, "samples": found.samples,
        "search_s": search_s, "confirm_s": confirm_s, "confirm_share": confirm_s / search_s,
        "search_best": search_best.number, "confirmed_best": found.winner.number, "configurations": []}
    print(f"search: {len(trials)} trials in {search_s:.0f} s; confirmation of the top {args.top} x {args.seeds} "
          f"seeds: {confirm_s:.0f} s ({confirm_s / search_s:.0%} of the search)")
    for entry in found.ranking:
        source = found.sources[entry.name]
        diff = entry.versus_best
        row = {"name": entry.name, "trial": source.number, "search_value": source.objective_value,
               "remeasured": statistics.fmean(source.noise) if source.noise else None,
               "n": entry.summary.n, "mean": entry.summary.mean, "sd": entry.summary.sd,
               "low": entry.summary.low, "high": entry.summary.high,
               "diff": None if diff is None else [diff.mean, diff.low, diff.high],
               "distinguishable": None if diff is None else diff.distinguishable,
               "collapsed_runs": found.collapsed.get(entry.name, 0)}
        result["configurations"].append(row)
        print(f"  {entry.name}: search {row['search_value']:.3f}, confirmed {entry.summary.sentence()}, "
              f"optimism {entry.summary.mean - row['search_value']:+.3f}")
    for line in found.sentences():
        print("  " + line)
    noise = pooled_noise([t.noise for t in trials if t.noise])
    if noise is not None:
        result["eval_noise_sd"] = noise.sd
        result["eval_noise_relative"] = noise.relative
    result["train_seed_sd"] = statistics.fmean(r.summary.sd for r in found.ranking)
    print(f"search best: trial {search_best.number}; confirmed best: trial {found.winner.number} "
          f"({'the same' if search_best.number == found.winner.number else 'changed'}); evaluation noise SD "
          f"{result.get('eval_noise_sd', float('nan')):.3f} vs mean training-seed SD {result['train_seed_sd']:.3f}")
    write_json(json_out, result)


if __name__ == "__main__":
    main()
