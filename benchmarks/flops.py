"""FLOP efficiency: the fraction of the machine's matrix-multiply rate that one training step reaches.

A throughput ratio against another loop says nothing about how far both are from the hardware.
This script counts the floating-point operations of one training step (D step and G step,
forward and backward) with `torch.utils.flop_counter.FlopCounterMode`, which counts matrix
products and convolutions (2 FLOPs a multiply-add; normalization, activations and the optimizer
are left out, so the fraction is a slight underestimate), times the step (median of rounds), and
divides the achieved rate by the measured rate of a large matrix product in the step's dtype
(fp32 on the CPU; bf16 on CUDA with autocast).

Models: `quickstart` and `full`, as in `compile_cost.py`.

Usage:
    python benchmarks/flops.py [--device auto] [--models quickstart,full] [--steps 5] [--rounds 3]
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import torch
from _common import machine, timed, training_loop, write_json  # benchmarks/ is on sys.path
from compile_cost import MODELS, model_config, parse_models
from torch.utils.flop_counter import FlopCounterMode

from hpsearch.devices import resolve_device


def matmul_rate(device: torch.device, dtype: torch.dtype, rounds: int = 5) -> float:
    """FLOP/s of an n×n by n×n product (n 2048 on the CPU, 8192 on CUDA), median of `rounds` timed batches."""
    n, reps = (8192, 20) if device.type == "cuda" else (2048, 4)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def run(k: int) -> None:
        for _ in range(k):
            a @ b

    run(2)
    return statistics.median(2 * n**3 * reps / timed(run, reps, device) for _ in range(rounds))


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    cfg, data = model_config(name)
    run = training_loop(cfg, data, device)
    run(2)  # warm-up: allocator, kernels chosen
    counter = FlopCounterMode(display=False)
    with counter:
        run(1)
    flops = counter.get_total_flops()
    seconds = [timed(run, args.steps, device) / args.steps for _ in range(args.rounds)]
    dtype = torch.bfloat16 if device.type == "cuda" and cfg.train.amp else torch.float32
    peak = matmul_rate(device, dtype)
    achieved = flops / statistics.median(seconds)
    return {"model": name, "image_size": cfg.data.image_size, "batch": cfg.train.batch_size,
            "gflop_per_step": flops / 1e9, "step_s": seconds, "achieved_gflop_s": achieved / 1e9,
            "matmul_dtype": str(dtype).removeprefix("torch."), "matmul_gflop_s": peak / 1e9,
            "fraction": achieved / peak}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", type=parse_models, default=list(MODELS), help=f"comma-separated, of {MODELS}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    rows = []
    for name in args.models:
        row = measure(name, args, device)
        rows.append(row)
        print(f"| {machine(device)} | {name} | {row['image_size']} | {row['gflop_per_step']:.2f} | "
              f"{1e3 * statistics.median(row['step_s']):.0f} ms | {row['achieved_gflop_s']:.1f} | "
              f"{row['matmul_dtype']} {row['matmul_gflop_s']:.0f} | {100 * row['fraction']:.1f}% |", flush=True)
    write_json(args.json, {"device": machine(device), "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
