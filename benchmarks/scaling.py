"""Scaling: aggregate training throughput with 1, 2 and 4 worker processes, and the storage's share.

For each worker count K a fresh study (the tiny space, `studies/digits_quick.yaml`'s base config,
`--steps` steps per trial, no pruning) runs `--trials-per-worker`·K trials with K `hpsearch worker`
processes started together on one storage (PostgreSQL at `--storage`, else a SQLite file). The
aggregate throughput is the images all trials trained divided by the wall time from the first
trial's start to the last one's end; the storage share is the trials' time in storage calls
(user attribute `storage_s`, the worker's main thread) over their wall time (`wall_s`).
On a GPU machine, `--device cuda` packs all K workers on the GPU (per-GPU packing 1, 2, 4).

Usage:
    python benchmarks/scaling.py [--workers 1,2,4] [--trials-per-worker 2] [--steps 300]
        [--storage postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--device cpu] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import optuna
import yaml
from _common import digits_study, write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.search import read_trial

ROOT = Path(__file__).resolve().parents[1]


def _study(folder: Path, name: str, storage: str, steps: int, trials: int) -> Path:
    train = {"steps": steps, "eval_every": steps // 2, "checkpoint_every": steps}
    return digits_study(folder / f"{name}.yaml", name, storage, folder / name, trials, enqueue=False,
                        base={"train": train}, pruner={"name": "none"})


def _measure(folder: Path, data_dir: Path, k: int, args: argparse.Namespace) -> dict[str, Any]:
    name = f"scaling_{k}_{uuid.uuid4().hex[:6]}"
    storage = args.storage or f"sqlite:///{folder / 'scaling.db'}"
    path = _study(folder, name, storage, args.steps, args.trials_per_worker * k)
    threads = max(1, (os.cpu_count() or 1) // k) if args.device == "cpu" else 1
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPSEARCH_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "hpsearch.cli", "worker", str(path), "--device", args.device,
           "--data-dir", str(data_dir)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(k)]
    errors = [p.communicate()[1] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed:\n{errors}")
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    start = min(t.datetime_start for t in trials if t.datetime_start)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    wall = (end - start).total_seconds()
    batch = yaml.safe_load(path.read_text())["base"]["train"]["batch_size"]
    images = sum(max(t.intermediate_values) for t in trials) * batch
    records = [read_trial(t) for t in trials]
    trial_wall = sum(r.wall_s or 0.0 for r in records)
    storage_s = sum(r.storage_s or 0.0 for r in records)
    return {"workers": k, "threads_per_worker": threads, "trials": len(trials), "wall_s": wall,
            "images_per_s": images / wall, "storage_share": storage_s / trial_wall, "storage_s": storage_s}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--trials-per-worker", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--storage", help="database URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-scaling-"))
    data_dir = folder / "data"
    # Warm the shared caches (dataset, domain classifier, reference statistics) outside the timing.
    _measure(folder, data_dir, 1, argparse.Namespace(**{**vars(args), "trials_per_worker": 1, "steps": 2}))
    rows = []
    for k in [int(w) for w in args.workers.split(",")]:
        rows.append(_measure(folder, data_dir, k, args))
        print(f"| {k} | {rows[-1]['trials']} | {rows[-1]['wall_s']:.1f} s | {rows[-1]['images_per_s']:.0f} | "
              f"{rows[-1]['images_per_s'] / rows[0]['images_per_s']:.2f}x | {100 * rows[-1]['storage_share']:.2f}% |",
              flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "storage": (args.storage or "sqlite").split("@")[-1], "device": args.device, "rows": rows}
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
