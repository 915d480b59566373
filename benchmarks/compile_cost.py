"""Compiling: what `train.compile` costs up front and what it gains per step, so a user can tell when it pays.

For each model the script builds an eager and a compiled training state (same seed, same data,
`training.build_state`), times the compiled state's first `--warmup` steps (compilation happens
there: one graph for D with gradients, one for G under `no_grad`, one for G with gradients, one for
D frozen in the G step) against the eager state's, then alternates `--rounds` rounds of `--steps`
steps between the two and takes the medians. The break-even trial length is the compile time
divided by the time saved per step; a trial shorter than that is slower compiled.

Inductor caches what it compiled on disk, and a later process compiling the same graphs (a later trial
of the same architecture on this machine) loads them instead: by default the script compiles into a
fresh, empty cache folder, so the figure is what a first trial pays; `--inductor-cache DIR` names a
folder to reuse (run twice with the same folder to see the warm cost).

Models: `quickstart` (configs/digits.yaml's model at 16×16, batch 64) and `full` (the 32×32
full-width hypermodel of `train_throughput.py`, batch 64), on random uint8 data of their shape.

Usage:
    python benchmarks/compile_cost.py [--device auto] [--models quickstart,full] [--steps 10]
        [--rounds 3] [--warmup 3] [--inductor-cache DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from _common import hypermodel_config, machine, random_images, timed, training_loop, write_json  # on sys.path

from hpsearch.config import RunConfig, load_config, replace_sections
from hpsearch.data import ImageDataset
from hpsearch.devices import resolve_device

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("quickstart", "full")


def parse_models(text: str) -> list[str]:
    """Comma-separated model names, each one of MODELS (argparse reports a bad one in one line)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{unknown or text!r}: choose from {', '.join(MODELS)}")
    return names


def model_config(name: str) -> tuple[RunConfig, ImageDataset]:
    """The named model's eager config and random data of its shape."""
    if name == "quickstart":
        cfg = load_config(ROOT / "configs" / "digits.yaml")
        return replace_sections(cfg, train={"ema": False}), random_images(1797, 16, channels=1)
    if name == "full":
        return hypermodel_config(32, 1.0, 64), random_images(10_000, 32)
    raise ValueError(f"model {name!r}: choose from {MODELS}")


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Compile time, steady-state seconds per step (eager, compiled) and the break-even trial length."""
    cfg, data = model_config(name)
    torch._dynamo.reset()
    eager = training_loop(cfg, data, device)
    compiled = training_loop(replace_sections(cfg, train={"compile": True}), data, device)
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
    parser.add_argument("--models", type=parse_models, default=list(MODELS), help=f"comma-separated, of {MODELS}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="first steps, where compilation happens")
    parser.add_argument("--inductor-cache", type=Path, help="Inductor's cache folder (default: a fresh, empty one)")
    parser.add_argument("--json", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    cache = args.inductor_cache or Path(tempfile.mkdtemp(prefix="hpsearch-inductor-"))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)  # read when Inductor first compiles, not at import
    rows = []
    for name in args.models:
        row = measure(name, args, device)
        row["inductor_cache"] = "fresh" if args.inductor_cache is None else "reused"
        rows.append(row)
        print(f"| {machine(device)} | {name} | {row['image_size']} | {row['inductor_cache']} | "
              f"{row['compile_s']:.1f} s | {1e3 * statistics.median(row['eager_step_s']):.1f} ms | "
              f"{1e3 * statistics.median(row['compiled_step_s']):.1f} ms | {row['speedup']:.2f}x | "
              f"{row['break_even_steps']:.0f} |", flush=True)
    write_json(args.json, {"device": machine(device), "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
