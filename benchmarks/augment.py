"""Augmentation: what each op costs per training step, and what it does on limited digits.

**cost** — the quickstart model (digits 16×16, width 0.25, batch 64) trains `--steps` steps per
round with no augmentation and with each augmentation, alternating in one process (`--rounds`
rounds; the machine's noise hits all alike); each op's cost is its median step time over the
baseline's, as a share of a step.

**ops** — each augmentation alone, timed over 200 repetitions as one training step uses it
(classic: once on the real batch; DiffAugment: three batches, one with its backward): the op's
own cost, which the whole-step comparison above cannot resolve below the machine's noise.

**limited** — digits with `--per-class` training images per class (20: 200 images; the
metrics use all 1,797), the quick study's reference design for 1500 steps, evaluated every 250:
no augmentation vs classic (rotation, shear, translation, brightness/contrast on real images)
vs DiffAugment (color, translation, cutout), `--seeds` training seeds each. Per arm: class FID
and conditional accuracy of each run's kept generator (its best evaluation), their mean, SD
and 95% interval, and each arm's difference from no augmentation by Welch's interval.

Usage:
    python benchmarks/augment.py [--parts cost ops limited] [--rounds 5] [--steps 20] [--seeds 3]
        [--per-class 20] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.augment import ClassicAugment, DiffAugment
from hpsearch.config import RunConfig, from_dict
from hpsearch.data import ImageDataset, load_dataset
from hpsearch.runner import run_training
from hpsearch.stats import difference, summarize
from hpsearch.training import batches_and_objective, build_state, train_step

_BASE: dict[str, Any] = {
    "data": {"name": "digits", "image_size": 16},
    "model": {"z_dim": 32, "dense_channels": 128, "g_width": 0.25, "d_width": 0.25, "embed_dim": 32,
              "g_cond": "cbn_linear", "d_cond": "projection", "d_spectral_norm": True},
    "train": {"steps": 1500, "batch_size": 64, "g_lr": 2.0e-4, "d_lr": 2.0e-4, "ema_decay": 0.995,
              "eval_every": 250, "log_every": 50, "checkpoint_every": 250},
    "metrics": {"samples": 500, "msssim_pairs": 20},
}
CLASSIC = {"rotate": 10.0, "rotate_p": 0.5, "shear": 10.0, "shear_p": 0.5, "translate": 0.1, "translate_p": 0.5,
           "brightness": 0.2, "contrast": 0.2, "color_p": 0.5}
ARMS: dict[str, dict[str, Any]] = {"none": {}, "classic": {"data": {"augment": CLASSIC}},
                                   "diffaug": {"train": {"diffaug": "color,translation,cutout"}}}
COSTS: dict[str, dict[str, Any]] = {
    "classic flip": {"data": {"augment": {"flip": 0.5}}},
    "classic warp (rotate+shear+translate)": {"data": {"augment": {
        k: v for k, v in CLASSIC.items() if not k.startswith(("bright", "contr", "color"))}}},
    "classic colour jitter": {"data": {"augment": {"brightness": 0.2, "contrast": 0.2, "color_p": 0.5}}},
    "diffaug color": {"train": {"diffaug": "color"}},
    "diffaug translation": {"train": {"diffaug": "translation"}},
    "diffaug cutout": {"train": {"diffaug": "cutout"}},
    "diffaug all three": {"train": {"diffaug": "color,translation,cutout"}},
}


def _config(extra: dict[str, Any], seed: int = 0, per_class: int | None = None) -> RunConfig:
    raw = {k: dict(v) for k, v in _BASE.items()}
    for section, values in extra.items():
        raw[section] = {**raw[section], **values}
    raw["train"]["seed"] = seed
    raw["data"]["per_class"] = per_class
    return from_dict(raw, "augment benchmark")


def cost(dataset: ImageDataset, rounds: int, steps: int) -> dict[str, Any]:
    device = torch.device("cpu")
    arms = {"none": _config({}), **{name: _config(extra) for name, extra in COSTS.items()}}
    runs = {}
    for name, cfg in arms.items():
        state = build_state(cfg, dataset, device)
        sampler, objective = batches_and_objective(cfg, dataset, state, device)
        train_step(state, objective, sampler.sample, cfg, dataset.num_classes)  # warm-up
        runs[name] = (state, objective, sampler, cfg)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, (state, objective, sampler, cfg) in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                train_step(state, objective, sampler.sample, cfg, dataset.num_classes)
            times[name].append((time.perf_counter() - start) / steps)
    base = statistics.median(times["none"])
    result = {}
    print(f"step time without augmentation: {base * 1000:.2f} ms (median of {rounds} rounds of {steps} steps)")
    for name in COSTS:
        median = statistics.median(times[name])
        result[name] = {"step_ms": median * 1000, "share": median / base - 1,
                        "rounds_ms": [t * 1000 for t in times[name]]}
        print(f"  {name}: {median * 1000:.2f} ms, {median / base - 1:+.1%} of a step "
              f"(rounds: {', '.join(f'{t * 1000:.1f}' for t in times[name])} ms)")
    return {"baseline_ms": base * 1000, "baseline_rounds_ms": [t * 1000 for t in times["none"]], "ops": result}


def ops(dataset: ImageDataset, reps: int, step_ms: float | None) -> dict[str, Any]:
    """Each augmentation alone on a training batch, forward (and for DiffAugment backward) as a step uses it.

    Per step the classic ops run once (the real batch of the D step); DiffAugment runs three times
    (real and fake in D's loss, fake in G's loss), G's backward passing through the last one.
    """
    cfg = _config({})
    x = dataset.images[: cfg.train.batch_size].float() / 127.5 - 1
    result = {}
    for name, extra in COSTS.items():
        arm = _config(extra)
        g = torch.Generator().manual_seed(0)
        if arm.train.diffaug:
            aug = DiffAugment(arm.train.diffaug, g)

            def once(aug: DiffAugment = aug) -> None:
                aug(x)
                aug(x)
                y = x.clone().requires_grad_(True)
                aug(y).sum().backward()
        else:
            classic = ClassicAugment(arm.data.augment, g)

            def once(classic: ClassicAugment = classic) -> None:
                classic(x)
        once()
        start = time.perf_counter()
        for _ in range(reps):
            once()
        ms = (time.perf_counter() - start) / reps * 1000
        share = ms / step_ms if step_ms else None
        result[name] = {"ms_per_step": ms, "share_of_step": share}
        print(f"  {name} alone: {ms:.3f} ms per step" + (f" = {share:.1%} of a {step_ms:.1f} ms step" if share else ""))
    return result


def limited(dataset: ImageDataset, seeds: int, per_class: int) -> dict[str, Any]:
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, extra in ARMS.items():
            results[arm] = {"class_fid": [], "cond_acc": [], "msssim": []}
            for seed in range(seeds):
                cfg = _config(extra, seed, per_class)
                kept: dict[int, dict[str, float]] = {}
                start = time.perf_counter()
                best = run_training(cfg, dataset, Path(tmp) / f"{arm}{seed}", torch.device("cpu"), Path(tmp) / "cache",
                                    metrics=True, progress=False,
                                    on_eval=[lambda step, _g, v, kept=kept: kept.__setitem__(step, dict(v))])
                at_best = kept[best.step]
                for key in results[arm]:
                    results[arm][key].append(float(at_best[key]))
                print(f"  {arm} seed {seed}: class FID {best.value:.2f} at step {best.step}, cond_acc "
                      f"{at_best['cond_acc']:.3f}, msssim {at_best['msssim']:.3f} "
                      f"({time.perf_counter() - start:.0f} s)")
    summary = {}
    for arm, values in results.items():
        fid, acc = summarize(values["class_fid"]), summarize(values["cond_acc"])
        diff = difference(values["class_fid"], results["none"]["class_fid"]) if arm != "none" else None
        summary[arm] = {**values, "class_fid_summary": fid.__dict__, "cond_acc_summary": acc.__dict__,
                        "class_fid_vs_none": None if diff is None else diff.__dict__}
        print(f"{arm}: class FID {fid.sentence()}, cond_acc {acc.sentence()}"
              + ("" if diff is None else f"; vs none {diff.mean:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]"
                 f" ({'distinguishable' if diff.distinguishable else 'not distinguishable'})"))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["cost", "ops", "limited"], default=["cost", "ops", "limited"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = load_dataset(_config({}).data)
    result: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                                         f"torch {torch.__version__}"}
    if "cost" in args.parts:
        result["cost"] = cost(dataset, args.rounds, args.steps)
    if "ops" in args.parts:
        result["ops"] = ops(dataset, 200, result["cost"]["baseline_ms"] if "cost" in result else None)
    if "limited" in args.parts:
        result["limited"] = limited(dataset, args.seeds, args.per_class)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
