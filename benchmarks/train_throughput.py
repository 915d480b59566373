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

With `--variants` the hpsearch loop runs in several variants against the one DataLoader loop
(fp32, contiguous, eager): each a `+`-joined subset of `bf16` (autocast, CUDA only), `cl`
(channels-last, CUDA only) and `compile` (`train.compile`), or `plain` for none of them; `all`
is the eight combinations. The default, `bf16+cl`, is what `hpsearch train` does on a GPU.
A compiled variant's warm-up steps include its compilation (`compile_cost.py` measures that).

Usage:
    python benchmarks/train_throughput.py [--device auto] [--image-size 32] [--batch 64]
        [--width 1.0] [--steps 30] [--rounds 3] [--num-workers 2] [--variants bf16+cl] [--json OUT.json]
    python benchmarks/train_throughput.py --families dcgan,sagan,stylegan2 [same options]

The data are random uint8 images of CIFAR-10's size (50,000 × 3 × 32 × 32 by default):
throughput does not depend on their content, and nothing needs downloading.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from _common import hypermodel_config, machine, random_images, timed, training_loop, write_json  # on sys.path
from torch.utils.data import DataLoader, Dataset

from hpsearch.config import RunConfig
from hpsearch.data import ImageDataset
from hpsearch.devices import resolve_device
from hpsearch.losses import GANObjective
from hpsearch.training import build_state, train_step

VARIANT_PARTS = ("bf16", "cl", "compile")


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


def parse_variants(text: str) -> list[str]:
    """`all`, or comma-separated `+`-joined subsets of bf16, cl, compile (`plain` for none), each in canonical order."""
    if text.strip() == "all":
        combos = itertools.product((True, False), repeat=len(VARIANT_PARTS))
        return ["+".join(p for p, on in zip(VARIANT_PARTS, c, strict=True) if on) or "plain" for c in combos]
    variants = []
    for item in (v.strip() for v in text.split(",") if v.strip()):
        parts = set() if item == "plain" else set(item.split("+"))
        if not parts <= set(VARIANT_PARTS):
            raise argparse.ArgumentTypeError(f"variant {item!r}: use plain or +-joined parts of {VARIANT_PARTS}")
        variants.append("+".join(p for p in VARIANT_PARTS if p in parts) or "plain")
    if not variants:
        raise argparse.ArgumentTypeError("no variant given")
    return variants


def _variant_config(args: argparse.Namespace, variant: str, family: str = "dcgan") -> RunConfig:
    parts = set(variant.split("+"))
    return hypermodel_config(args.image_size, args.width, args.batch, family, amp="bf16" in parts,
                             channels_last="cl" in parts, compile="compile" in parts)


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


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--variants", type=parse_variants, default=["bf16+cl"],
                        help="hpsearch-loop variants against the DataLoader loop (see above)")
    parser.add_argument("--families", help="comma-separated generator families to compare instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    data = random_images(args.images, args.image_size)
    if args.families:
        _families(args, data, device)
        return
    loops = {f"hpsearch {v}": training_loop(_variant_config(args, v), data, device) for v in args.variants}
    plain_cfg = _variant_config(args, "plain")
    plain_state = build_state(plain_cfg, data, device)
    loader = DataLoader(_PerItemDataset(data), batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=args.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=args.num_workers > 0)
    loader_batches = _loader_batches(loader, device)
    objective = GANObjective(plain_cfg.train)

    def plain(steps: int) -> None:
        for _ in range(steps):
            train_step(plain_state, objective, loader_batches, plain_cfg, data.num_classes)

    loops["dataloader"] = plain
    for run in loops.values():
        run(args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, run in loops.items():
            rates[name].append(args.batch * args.steps / timed(run, args.steps, device))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    rows = []
    for variant in args.variants:
        ours, theirs = rates[f"hpsearch {variant}"], rates["dataloader"]
        ratio = medians[f"hpsearch {variant}"] / medians["dataloader"]
        rows.append({"variant": variant, "hpsearch_img_s": ours, "dataloader_img_s": theirs, "ratio": ratio})
        print(f"| {machine(device)} | {args.image_size} | {args.batch} | {args.width} | {args.num_workers} | "
              f"{variant} | {medians[f'hpsearch {variant}']:.0f} ({_listed(ours)}) | "
              f"{medians['dataloader']:.0f} ({_listed(theirs)}) | {ratio:.2f}x |", flush=True)
    first = rows[0]
    write_json(args.json, {"device": machine(device), "torch": torch.__version__, "image_size": args.image_size,
                           "batch": args.batch, "width": args.width, "num_workers": args.num_workers,
                           "steps_per_round": args.steps, "rounds": args.rounds, "rows": rows,
                           "hpsearch_img_s": first["hpsearch_img_s"], "dataloader_img_s": first["dataloader_img_s"],
                           "ratio": first["ratio"]})


def _families(args: argparse.Namespace, data: ImageDataset, device: torch.device) -> None:
    """The hpsearch loop per generator family, rounds alternating between families."""
    variant = args.variants[0]
    runs = {family: training_loop(_variant_config(args, variant, family), data, device)
            for family in [f.strip() for f in args.families.split(",") if f.strip()]}
    for run in runs.values():
        run(args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, family_run in runs.items():
            rates[name].append(args.batch * args.steps / timed(family_run, args.steps, device))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    first = next(iter(medians))
    for name, rate in medians.items():
        print(f"| {machine(device)} | {name} | {args.image_size} | {args.width} | {rate:.0f} ({_listed(rates[name])}) "
              f"| {rate / medians[first]:.2f}x |", flush=True)
    write_json(args.json, {"device": machine(device), "torch": torch.__version__, "image_size": args.image_size,
                           "batch": args.batch, "width": args.width, "variant": variant, "img_s": rates,
                           "median_img_s": medians})


def _listed(rates: list[float]) -> str:
    return ", ".join(f"{r:.0f}" for r in rates)


if __name__ == "__main__":
    main()
