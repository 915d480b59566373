"""Collapse rules: within-class MS-SSIM and per-class coverage of real data, healthy and collapsed generators.

An evaluation is flagged `collapse` when its generated within-class MS-SSIM exceeds the
real data's by more than `metrics.collapse_margin`, or when some class's density exceeds its
coverage (Naeem et al. 2020) by more than `metrics.collapse_density_ratio`. This script
measures what the two thresholds have to separate, on one dataset (each class's precision,
density and coverage are recorded at every evaluation; the lowest class coverage and the
largest density/coverage are printed beside each MS-SSIM):

- the real value and the sampling noise of its estimate (the evaluation draws
  `msssim_pairs` random same-class pairs; the estimate is repeated with 10 pair seeds);
- healthy generators (the quick study's reference design, several training seeds): the
  generated value at every evaluation, early steps included, since an untrained generator
  also draws alike images;
- a StyleGAN2-style generator (the issue reports that it collapses on digits);
- controlled partial collapse: the last healthy generator sampled with only k distinct
  latents per class (k = 1 is total collapse), so the margin's meaning in modes is known.

Usage:
    python benchmarks/collapse_margin.py [--seeds 2] [--steps 1500] [--pairs 20] [--samples 500] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import write_json  # benchmarks/ is on sys.path when a script runs

from hpsearch.config import RunConfig, from_dict
from hpsearch.data import load_dataset
from hpsearch.generation import class_labels, generate, seeded_eval
from hpsearch.images import to_uint8
from hpsearch.metrics import Evaluator, density_over_coverage
from hpsearch.metrics.manifold import Manifold
from hpsearch.metrics.msssim import class_msssim
from hpsearch.runner import run_training

_BASE = {
    "data": {"name": "digits", "image_size": 16},
    "model": {"z_dim": 32, "dense_channels": 128, "g_width": 0.25, "d_width": 0.25, "embed_dim": 32,
              "g_cond": "cbn_linear", "d_cond": "projection", "d_spectral_norm": True},
    "train": {"batch_size": 64, "g_lr": 2.0e-4, "d_lr": 2.0e-4, "ema_decay": 0.995, "eval_every": 250,
              "log_every": 50, "checkpoint_every": 250},
    "metrics": {"samples": 500, "msssim_pairs": 20},
}
_STYLEGAN = {"generator": "stylegan2", "w_dim": 64, "mapping_layers": 2, "style_mixing": 0.9}


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def _config(seed: int, steps: int, pairs: int, model: dict | None = None, samples: int = 500) -> RunConfig:
    raw = {k: dict(v) for k, v in _BASE.items()}
    raw["train"].update(steps=steps, seed=seed)
    raw["metrics"].update(msssim_pairs=pairs, samples=samples)
    raw["model"].update(model or {})
    return from_dict(raw, "collapse benchmark")


def piling(per_class: list[dict[str, float]]) -> float:
    """The largest density / coverage over the classes (metrics.collapse_density_ratio's quantity)."""
    return max(density_over_coverage(Manifold(**p)) for p in per_class)


@torch.no_grad()
def _per_class(evaluator: Evaluator, images: torch.Tensor, labels: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, density and coverage of each class of one batch (the evaluator reports their means)."""
    evaluator.setup()
    return [dataclasses.asdict(m) for m in evaluator.class_manifolds(evaluator.features(images), labels)]


def _train(cfg: RunConfig, dataset, folder: Path, cache: Path) -> tuple[list[dict], torch.nn.Module]:
    evals: list[dict] = []
    kept: dict[str, torch.nn.Module] = {}
    evaluator = Evaluator(cfg, dataset, torch.device("cpu"), cache)

    def collect(step: int, generator: torch.nn.Module, values) -> None:
        labels = class_labels(dataset.num_classes, evaluator.per_class)  # the evaluation's own batch
        images = generate(generator, labels, cfg.model.z_dim, seed=cfg.train.seed)
        evals.append({"step": step, "msssim": values["msssim"], "class_fid": values["class_fid"],
                      "coverage_min": values["class_coverage_min"], "coverage": values["class_coverage"],
                      "per_class": _per_class(evaluator, images, labels)})
        kept["g"] = generator

    run_training(cfg, dataset, folder, torch.device("cpu"), cache, metrics=True, on_eval=[collect], progress=False)
    return evals, kept["g"]


@torch.no_grad()
def _k_latents(generator: torch.nn.Module, cfg: RunConfig, classes: int, per_class: int, k: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images per class drawn from only `k` distinct latents per class."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    rng = torch.Generator().manual_seed(seed)
    distinct = torch.randn(classes, k, cfg.model.z_dim, generator=rng)
    pick = torch.randint(k, (classes, per_class), generator=rng)
    z = torch.stack([distinct[c, pick[c]] for c in range(classes)]).reshape(-1, cfg.model.z_dim)
    with seeded_eval(generator, seed, torch.device("cpu")):
        images = to_uint8(generator(z, labels))
    return images, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds of the healthy design")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--pairs", type=int, default=20, help="msssim_pairs of the evaluation")
    parser.add_argument("--samples", type=int, default=500, help="metrics.samples of the evaluation")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = load_dataset(_config(0, args.steps, args.pairs).data)

    def config(seed: int, model: dict | None = None) -> RunConfig:
        return _config(seed, args.steps, args.pairs, model, args.samples)

    def line(evals: list[dict]) -> str:
        return ", ".join(f"{e['step']}: {e['msssim']:.3f}, cov. min {e['coverage_min']:.2f}, density/coverage max "
                         f"{piling(e['per_class']):.1f} (cFID {e['class_fid']:.2f})" for e in evals)

    classes = dataset.num_classes
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
                    "pairs": args.pairs}

    real = {p: [class_msssim(dataset.images, dataset.labels, p, seed=s) for s in range(10)]
            for p in (args.pairs, 50, 1000)}
    result["real"] = {str(p): _spread(v) for p, v in real.items()}
    print("real within-class MS-SSIM (10 pair seeds):")
    for p, v in real.items():
        s = _spread(v)
        print(f"  {p:5d} pairs/class: {s['mean']:.3f} ± {s['sd']:.3f} (range {s['min']:.3f}-{s['max']:.3f})")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        healthy, last = [], None
        for seed in range(args.seeds):
            start = time.perf_counter()
            evals, last = _train(config(seed), dataset, Path(tmp) / f"dcgan{seed}", cache)
            healthy.append(evals)
            print(f"healthy dcgan seed {seed} ({time.perf_counter() - start:.0f} s): {line(evals)}")
        result["healthy"] = healthy
        styled = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            evals, _ = _train(config(seed, _STYLEGAN), dataset, Path(tmp) / f"style{seed}", cache)
            styled.append(evals)
            print(f"stylegan2 seed {seed} ({time.perf_counter() - start:.0f} s): {line(evals)}")
        result["stylegan2"] = styled

        assert last is not None
        cfg = config(0)
        per_class = cfg.metrics.samples // classes
        evaluator = Evaluator(cfg, dataset, torch.device("cpu"), cache)
        partial = {}
        for k in (1, 2, 4, 8, per_class):
            batches = [_k_latents(last, cfg, classes, per_class, k, s) for s in range(10)]
            values = [class_msssim(*b, args.pairs, seed=s) for s, b in enumerate(batches)]
            coverage = [evaluator.evaluate(*b, seed=s)["class_coverage_min"] for s, b in enumerate(batches)]
            partial[str(k)] = {"msssim": _spread(values), "coverage_min": _spread(coverage),
                               "per_class": [_per_class(evaluator, *b) for b in batches[:3]]}
            print(f"last healthy generator, {k:3d} distinct latents per class: MS-SSIM {_spread(values)['mean']:.3f} "
                  f"± {_spread(values)['sd']:.3f}, lowest class coverage {_spread(coverage)['mean']:.3f} "
                  f"± {_spread(coverage)['sd']:.3f}, density/coverage max "
                  + ", ".join(f"{piling(pc):.1f}" for pc in partial[str(k)]["per_class"]))
        result["k_latents"] = partial
    write_json(args.json, result)


if __name__ == "__main__":
    main()
