"""Evaluation cost: one evaluation vs. the training steps between two evaluations.

Runs a config's training loop and its evaluator in one process, alternating a block of
`train.eval_every` training steps with one evaluation (at `metrics.samples`), and reports
the evaluation's share of the time, the issue's target being at most 10%. The one-time
setup (domain classifier training and reference statistics, cached and shared by every
later trial and worker) is reported separately, as a share of one whole trial.

Usage:
    python benchmarks/eval_cost.py [--config configs/digits.yaml] [--device auto] [--rounds 3]
        [--train-steps N] [--data-dir DIR] [--json OUT.json]

`--train-steps N` times N steps and scales to `eval_every` (for slow CPU runs of big models);
the output says when it did.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.config import load_config
from hpsearch.data import DeviceBatchSampler, load_dataset
from hpsearch.devices import resolve_device
from hpsearch.losses import GANObjective
from hpsearch.metrics import Evaluator
from hpsearch.training import build_state, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/digits.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, help="time this many steps and scale to eval_every")
    parser.add_argument("--data-dir", type=Path, help="dataset folder (default: a fresh temporary one)")
    parser.add_argument("--json", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    device = resolve_device(args.device)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="hpsearch-eval-cost-"))
    dataset = load_dataset(cfg.data, data_dir)
    cache = Path(tempfile.mkdtemp(prefix="hpsearch-eval-cache-"))  # fresh: the setup is really timed

    state = build_state(cfg, dataset, device)
    sampler = DeviceBatchSampler(dataset, cfg.train.batch_size, device, state.rng, cfg.data.hflip)
    objective = GANObjective(cfg.train)
    evaluator = Evaluator(cfg, dataset, device, cache)
    start = time.perf_counter()
    evaluator.setup()
    setup_s = time.perf_counter() - start

    block = args.train_steps or cfg.train.eval_every
    scale = cfg.train.eval_every / block
    train_s, eval_s = [], []
    for r in range(args.rounds):
        _sync(device)
        start = time.perf_counter()
        for _ in range(block):
            train_step(state, objective, sampler.sample, cfg, dataset.num_classes)
        _sync(device)
        train_s.append((time.perf_counter() - start) * scale)
        start = time.perf_counter()
        evaluator(r, state.sampling_generator)
        _sync(device)
        eval_s.append(time.perf_counter() - start)

    t, e = statistics.median(train_s), statistics.median(eval_s)
    evals_per_trial = cfg.train.steps // cfg.train.eval_every
    trial_s = t * evals_per_trial + e * evals_per_trial
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    result = {"device": machine, "config": str(args.config), "eval_every": cfg.train.eval_every,
              "samples": cfg.metrics.samples, "features": cfg.metrics.features, "train_block_s": train_s,
              "eval_s": eval_s, "eval_share": e / (t + e), "setup_s": setup_s,
              "setup_share_of_first_trial": setup_s / (trial_s + setup_s),
              "extrapolated_from_steps": args.train_steps}
    note = f" (timed {block} steps, scaled)" if args.train_steps else ""
    print(f"| {machine} | {args.config} | {cfg.metrics.samples} | {cfg.train.eval_every}{note} | {t:.1f} s | "
          f"{e:.2f} s | {100 * e / (t + e):.1f}% | {setup_s:.1f} s ({100 * result['setup_share_of_first_trial']:.0f}%"
          " of the first trial) |")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
