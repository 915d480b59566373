"""Compiling: what `train.compile` costs up front and what it gains per step, so a user can tell when it pays.

For each model the script builds an eager and a compiled training state (same seed, same data,
`training.build_state`), times the compiled state's first `--warmup` steps (compilation happens
there: one graph for D with gradients, one for G under `no_grad`, one for G with gradients, one for
D frozen in the G step) against the eager state's, then alternates `--rounds` rounds of `--steps`
steps between the two and takes the medians. The break-even trial length is the compile time
divided by the time saved per step; a trial shorter than that is slower compiled.

Models: `quickstart` (configs/digits.yaml's model at 16×16, batch 64) and `full` (the 32×32
full-width hypermodel of `train_throughput.py`, batch 64), on random uint8 data of their shape.

Usage:
    python benchmarks/compile_cost.py [--device auto] [--models quickstart,full] [--steps 10]
        [--rounds 3] [--warmup 3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import hypermodel_config, machine, random_images, timed, write_json  # benchmarks/ is on sys.path

from hpsearch.config import RunConfig, load_config, replace_sections
from hpsearch.data import DeviceBatchSampler, ImageDataset
from hpsearch.losses import GANObjective
from hpsearch.training import build_state, resolve_device, train_step

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("quickstart", "full")


def model_config(name: str) -> tuple[RunConfig, ImageDataset]:
    """The named model's eager config and random data of its shape."""
    if name == "quickstart":
        cfg = load_config(ROOT / "configs" / "digits.yaml")
        return replace_sections(cfg, train={"ema": False}), random_images(1797, 16, channels=1)
    if name == "full":
        return hypermodel_config(32, 1.0, 64), random_images(10_000, 32)
    raise argparse.ArgumentTypeError(f"model {name!r}: choose from {MODELS}")


def _loop(cfg: RunConfig, data: ImageDataset, device: torch.device) -> Callable[[int], None]:
    state = build_state(cfg, data, device)
    cl = device.type == "cuda" and cfg.train.channels_last
    sampler = DeviceBatchSampler(data, cfg.train.batch_size, device, state.rng, hflip=True, channels_last=cl)
    objective = GANObjective(cfg.train)

    def run(steps: int) -> None:
        for _ in range(steps):
            train_step(state, objective, sampler.sample, cfg, data.num_classes)

    return run


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Compile time, steady-state seconds per step (eager, compiled) and the break-even trial length."""
    cfg, data = model_config(name)
    torch._dynamo.reset()
    eager = _loop(cfg, data, device)
    compiled = _loop(replace_sections(cfg, train={"compile": True}), data, device)
    eager_first = timed(eager, args.warmup, device)
    compiled_first = timed(compiled, args.warmup, device)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for label, run in (("eager", eager), ("compiled", compiled)):
            times[label].append(timed(run, args.steps, device) / args.steps)
    step_e, step_c = statistics.median(times["eager"]), statistics.median(times["compiled"])
    compile_s = compiled_first - args.warmup * step_c
    saved = step_e - step_c
    return {"model": name, "image_size": cfg.data.image_size, "batch": cfg.train.batch_size,
            "eager_first_s": eager_first, "compiled_first_s": compiled_first, "compile_s": compile_s,
            "eager_step_s": times["eager"], "compiled_step_s": times["compiled"], "speedup": step_e / step_c,
            "break_even_steps": compile_s / saved if saved > 0 else math.inf}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {MODELS}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="first steps, where compilation happens")
    parser.add_argument("--json", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        row = measure(name, args, device)
        rows.append(row)
        print(f"| {machine(device)} | {name} | {row['image_size']} | {row['compile_s']:.1f} s | "
              f"{1e3 * statistics.median(row['eager_step_s']):.1f} ms | "
              f"{1e3 * statistics.median(row['compiled_step_s']):.1f} ms | {row['speedup']:.2f}x | "
              f"{row['break_even_steps']:.0f} |", flush=True)
    write_json(args.json, {"device": machine(device), "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
