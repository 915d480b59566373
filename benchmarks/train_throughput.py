"""Training throughput: hpsearch's loop vs. a plain PyTorch loop fed by a DataLoader.

Both loops train the same model (the Table I/II hypermodel, CBN + projection, hinge loss)
with the same step function (`training.train_step`) in one process, alternating rounds so
that machine noise hits both alike. They differ in what `hpsearch train` adds: the hpsearch
loop draws batches from the device-resident `DeviceBatchSampler` and, on CUDA, runs bf16
autocast and channels-last; the plain loop is fed the way one writes it by hand: a
`Dataset` that scales and flips per item, a `DataLoader` with worker processes and pinned
memory, a host-to-device copy per batch, fp32, contiguous tensors.

With `--families dcgan,sagan,stylegan2` it measures instead the hpsearch loop for each
generator family (same discriminator, same data, alternating rounds; sagan with attention at
the output resolution, stylegan2 with its defaults) and reports images/s and the ratio to dcgan.

Usage:
    python benchmarks/train_throughput.py [--device auto] [--image-size 32] [--batch 64]
        [--width 1.0] [--steps 30] [--rounds 3] [--num-workers 2] [--json OUT.json]
    python benchmarks/train_throughput.py --families dcgan,sagan,stylegan2 [same options]

The data are random uint8 images of CIFAR-10's size (50,000 × 3 × 32 × 32 by default):
throughput does not depend on their content, and nothing needs downloading.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import write_json  # benchmarks/ is on sys.path when a script runs
from torch.utils.data import DataLoader, Dataset

from hpsearch.config import RunConfig, from_dict
from hpsearch.data import DeviceBatchSampler, ImageDataset
from hpsearch.losses import GANObjective
from hpsearch.training import build_state, resolve_device, train_step


class _PerItemDataset(Dataset):
    """The usual hand-written dataset: uint8 → float in [-1, 1] and a random flip, per item."""

    def __init__(self, data: ImageDataset) -> None:
        self.images, self.labels = data.images, data.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i].float() / 127.5 - 1.0
        if torch.rand(()) < 0.5:
            x = x.flip(2)
        return x, self.labels[i]


def _config(args: argparse.Namespace, family: str = "dcgan") -> RunConfig:
    extra = {"g_attention": args.image_size} if family == "sagan" else {}
    return from_dict({
        "data": {"name": "cifar10", "image_size": args.image_size, "hflip": True},
        "model": {"generator": family, "g_width": args.width, "d_width": args.width, "dense_channels": 256,
                  "z_dim": 128, "g_cond": "cbn_linear", "d_cond": "projection", "d_spectral_norm": True, **extra},
        "train": {"batch_size": args.batch, "loss": "hinge", "ema": False},
    }, "<benchmark>")


def _loader_batches(loader: DataLoader, device: torch.device) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """Batches from the DataLoader, copied to the device per batch (restarting each epoch)."""
    batches = iter(loader)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return next_batch


def _timed(run: Callable[[int], None], steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round and loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--families", help="comma-separated generator families to compare instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cfg = _config(args)
    g = torch.Generator().manual_seed(0)
    shape = (args.images, 3, args.image_size, args.image_size)
    data = ImageDataset(torch.randint(0, 256, shape, dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (args.images,), generator=g), [str(i) for i in range(10)])
    if args.families:
        _families(args, data, device)
        return

    objective = GANObjective(cfg.train)
    ours_state = build_state(cfg, data, device)
    cl = device.type == "cuda" and cfg.train.channels_last
    sampler = DeviceBatchSampler(data, args.batch, device, ours_state.rng, hflip=True, channels_last=cl)

    def ours(steps: int) -> None:
        for _ in range(steps):
            train_step(ours_state, objective, sampler.sample, cfg, 10)

    plain_cfg = from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "amp": False,
                                                      "channels_last": False}}, "<benchmark>")
    plain_state = build_state(plain_cfg, data, device)
    loader = DataLoader(_PerItemDataset(data), batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=args.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=args.num_workers > 0)
    loader_batches = _loader_batches(loader, device)

    def plain(steps: int) -> None:
        for _ in range(steps):
            train_step(plain_state, objective, loader_batches, plain_cfg, 10)

    ours(args.warmup)
    plain(args.warmup)
    rates: dict[str, list[float]] = {"hpsearch": [], "dataloader": []}
    for _ in range(args.rounds):
        for name, run in (("hpsearch", ours), ("dataloader", plain)):
            rates[name].append(args.batch * args.steps / _timed(run, args.steps, device))
    ours_med, plain_med = statistics.median(rates["hpsearch"]), statistics.median(rates["dataloader"])
    machine = _machine(device)
    result = {"device": machine, "torch": torch.__version__, "image_size": args.image_size, "batch": args.batch,
              "width": args.width, "num_workers": args.num_workers, "steps_per_round": args.steps,
              "rounds": args.rounds, "hpsearch_img_s": rates["hpsearch"], "dataloader_img_s": rates["dataloader"],
              "ratio": ours_med / plain_med}
    print(f"| {machine} | {args.image_size} | {args.batch} | {args.width} | {args.num_workers} | "
          f"{ours_med:.0f} | {plain_med:.0f} | {ours_med / plain_med:.2f}x |")
    write_json(args.json, result)


def _families(args: argparse.Namespace, data: ImageDataset, device: torch.device) -> None:
    """The hpsearch loop per generator family, rounds alternating between families."""
    runs: dict[str, Callable[[int], None]] = {}
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        cfg = _config(args, family)
        state = build_state(cfg, data, device)
        cl = device.type == "cuda" and cfg.train.channels_last
        sampler = DeviceBatchSampler(data, args.batch, device, state.rng, hflip=True, channels_last=cl)
        objective = GANObjective(cfg.train)

        def run(steps: int, state=state, sampler=sampler, objective=objective, cfg=cfg) -> None:  # type: ignore[no-untyped-def]
            for _ in range(steps):
                train_step(state, objective, sampler.sample, cfg, 10)

        run(args.warmup)
        runs[family] = run
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, family_run in runs.items():
            rates[name].append(args.batch * args.steps / _timed(family_run, args.steps, device))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    first = next(iter(medians))
    for name, rate in medians.items():
        print(f"| {_machine(device)} | {name} | {args.image_size} | {args.batch} | {args.width} | {rate:.0f} | "
              f"{rate / medians[first]:.2f}x |")
    write_json(args.json, {"device": _machine(device), "torch": torch.__version__, "image_size": args.image_size,
                           "batch": args.batch, "width": args.width, "img_s": rates, "median_img_s": medians})


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


if __name__ == "__main__":
    main()
