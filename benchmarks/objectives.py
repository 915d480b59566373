"""Which objective ranks conditional-GAN designs most reliably, per unit of evaluation time (issue 27).

    python benchmarks/objectives.py train --workers 2        # the generators: an hpsearch study, resumable
    python benchmarks/objectives.py measure --batches 3 --json benchmarks/data/objectives.json
    python benchmarks/objectives.py table benchmarks/data/objectives.json   # the statistics again, from the scores
    python benchmarks/objectives.py subsets      # what metrics.kid_subsets buys: subset noise vs. batch noise

The generators (`benchmarks/objectives/study.yaml`): 16 of the ground-truth grid's 32 configurations
(every second one in the order of their true class FID, so that they span the table), trained with
seeds 0 and 1 to 1,500 steps on digits 16x16; each trial keeps the generator of its best evaluation
(by class FID, on the training seed's batch).

`measure` scores every kept generator on `--batches` fresh evaluation batches (generation seeds that
no trial used) at the default `metrics.samples` (1,000) and at 2x and 4x it, with every objective
computed from the same batch and features: class FID, FID, class KID, KID, and coverage overall and
per class (higher is better: ranked by its negative). For each objective and sample count it reports

- `rel_sd`: the spread between evaluation batches, SD / |mean| over the batches of one generator
  (median over the generators);
- `separation`: how far apart the designs lie in units of that noise: the SD over the designs of
  their mean value, over the root-mean-square SD between batches (higher separates better);
- `rho_batches`: Spearman's rank correlation of the 32 generators' order between two batches
  (mean over the batch pairs), with a 95% bootstrap interval over the generators;
- `rho_seeds`: Spearman's correlation of the 16 designs' order between training seed 0 and seed 1,
  each scored on one batch (what a search that trains each design once sees; mean over batches),
  with a 95% bootstrap interval over the designs;
- `eval_s`: one evaluation's time for that objective alone: generation and features (shared by all
  objectives) plus the objective's own computation (median of the timed evaluations), on this machine.

The 16 designs span class FID 6 to 280, so any objective orders most of them; the same statistics are
also given for the best 8 (the first 8 of the 16 in the ground-truth order, whose truths lie within
6.4-14.6): the part of a search space where the choice is made.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from benchmarks.ground_truth import read_table  # noqa: E402
from hpsearch.config import replace_sections  # noqa: E402
from hpsearch.data import load_dataset  # noqa: E402
from hpsearch.generation import class_labels, generate, load_generator  # noqa: E402
from hpsearch.metrics import Evaluator  # noqa: E402
from hpsearch.metrics.kid import FeatureKID  # noqa: E402
from hpsearch.search import fetch_generator, load_study_config, open_study, read_trials  # noqa: E402

STUDY = ROOT / "benchmarks" / "objectives" / "study.yaml"
BASE_SAMPLES = 1000  # metrics.samples' default
MULTIPLES = (1, 2, 4)
EVAL_SEED = 10_000  # generation seeds EVAL_SEED + b: no trial drew these (training seeds are 0 and 1)
# objective -> sign that makes lower better (coverage is higher-is-better)
OBJECTIVES = {"class_fid": 1, "fid": 1, "class_kid": 1, "kid": 1, "class_coverage": -1, "coverage": -1}
Design = tuple[str, str, bool]
DesignSeed = tuple[Design, int]


def kept_generators(device: torch.device, folder: Path) -> list[tuple[Design, int, torch.nn.Module]]:
    """(design, training seed, kept generator) of every completed trial of the study."""
    loaded = load_study_config(STUDY)
    found = []
    for t in read_trials(open_study(loaded)):
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        dest = folder / f"trial{t.number}.pt"
        if fetch_generator(loaded.artifacts_dir, t, dest) is None:
            continue
        p = t.params
        found.append(((p["g_cond"], p["d_cond"], bool(p["d_spectral_norm"])), int(p["seed"]),
                      load_generator(dest, device).generator))
    return found


def score(ev: Evaluator, generator: torch.nn.Module, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Every objective of one evaluation batch, and each one's time (shared generation + features + its own)."""
    assert ev.fid is not None and ev.kid is not None and ev.reference is not None
    ref = ev.reference
    start = time.perf_counter()
    labels = class_labels(ev.dataset.num_classes, ev.per_class, ev.device)
    features = ev.features(generate(generator, labels, ev.cfg.model.z_dim, seed=seed))
    shared = time.perf_counter() - start
    own: dict[str, Callable[[], float]] = {  # the evaluator's own pieces, each timed alone
        "class_fid": lambda: ev.class_fid(features, labels),
        "fid": lambda: ev.fid.distance(ref.overall, features),
        "class_kid": lambda: ev.class_kid(features, labels, seed),
        "kid": lambda: ev.kid.distance(ref.features, features, seed),
        "class_coverage": lambda: statistics.fmean(p.coverage for p in ev.class_manifolds(features, labels)),
        "coverage": lambda: ev.overall_manifold(features).coverage,
    }
    values, seconds = {}, {}
    for name, compute in own.items():
        start = time.perf_counter()
        values[name] = compute()
        seconds[name] = shared + time.perf_counter() - start
    return values, seconds


def _bootstrap(rows: int, stat: Callable[[np.ndarray], float], boot: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    draws = [stat(rng.integers(rows, size=rows)) for _ in range(boot)]
    return [float(np.nanpercentile(draws, 2.5)), float(np.nanpercentile(draws, 97.5))]


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def summarize(values: np.ndarray, designs: list[Design], runs: list[DesignSeed]) -> dict[str, Any]:
    """Statistics of one objective at one sample count over `designs`; `values` is (runs, batches), lower
    is better."""
    keep = [i for i, (d, _) in enumerate(runs) if d in designs]
    values, runs = values[keep], [runs[i] for i in keep]
    sd = values.std(axis=1, ddof=1)
    rel_sd = float(np.median(sd / np.abs(values.mean(axis=1))))
    by_design = np.array([values[[i for i, (d, _) in enumerate(runs) if d == design]].mean() for design in designs])
    separation = float(by_design.std(ddof=1) / np.sqrt(np.mean(sd ** 2)))
    pairs = list(itertools.combinations(range(values.shape[1]), 2))

    def rho_batches(rows: np.ndarray) -> float:
        return statistics.fmean(_rho(values[rows, a], values[rows, b]) for a, b in pairs)

    seeded = {s: np.array([next(i for i, r in enumerate(runs) if r == (d, s)) for d in designs]) for s in (0, 1)}

    def rho_seeds(rows: np.ndarray) -> float:
        return statistics.fmean(_rho(values[seeded[0][rows], b], values[seeded[1][rows], b])
                                for b in range(values.shape[1]))

    every_run, every_design = np.arange(len(runs)), np.arange(len(designs))
    return {"rel_sd": rel_sd, "separation": separation,
            "rho_batches": rho_batches(every_run), "rho_batches_ci": _bootstrap(len(runs), rho_batches),
            "rho_seeds": rho_seeds(every_design), "rho_seeds_ci": _bootstrap(len(designs), rho_seeds)}


def measure(batches: int, device: torch.device) -> dict[str, Any]:
    loaded = load_study_config(STUDY)
    dataset = load_dataset(loaded.base_config.data)
    with tempfile.TemporaryDirectory() as tmp:
        found = kept_generators(device, Path(tmp))
    runs = [(d, s) for d, s, _ in found]
    designs = sorted({d for d, _ in runs if (d, 0) in runs and (d, 1) in runs})
    keep = [i for i, (d, _) in enumerate(runs) if d in designs]
    found, runs = [found[i] for i in keep], [runs[i] for i in keep]
    print(f"{len(found)} kept generators of {len(designs)} designs x 2 seeds; {batches} batches each", flush=True)
    result: dict[str, Any] = {"designs": [list(d) for d in designs], "runs": [[*d, s] for d, s in runs],
                              "batches": batches, "values": {}, "eval_s": {}}
    with tempfile.TemporaryDirectory() as cache:
        for multiple in MULTIPLES:
            samples = BASE_SAMPLES * multiple
            cfg = replace_sections(loaded.base_config, metrics={"samples": samples})
            ev = Evaluator(cfg, dataset, device, Path(cache))
            ev.setup()
            values = {name: np.zeros((len(found), batches)) for name in OBJECTIVES}
            seconds: dict[str, list[float]] = {name: [] for name in OBJECTIVES}
            start = time.perf_counter()
            for i, (_, _, generator) in enumerate(found):
                for b in range(batches):
                    scored, timed = score(ev, generator, EVAL_SEED + b)
                    for name, sign in OBJECTIVES.items():
                        values[name][i, b] = sign * scored[name]
                        seconds[name].append(timed[name])
            print(f"{samples} samples: {time.perf_counter() - start:.0f} s", flush=True)
            result["values"][str(samples)] = {n: v.tolist() for n, v in values.items()}
            result["eval_s"][str(samples)] = {n: statistics.median(v) for n, v in seconds.items()}
    return result


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The statistics of every objective and sample count, over all designs and over the best 8."""
    designs = [(g, d, bool(sn)) for g, d, sn in result["designs"]]
    runs = [((g, d, bool(sn)), int(s)) for g, d, sn, s in result["runs"]]
    order = ground_truth_order()
    best = sorted(designs, key=order.index)[:8]
    rows = []
    for subset, chosen in (("all 16", designs), ("best 8", best)):
        for samples, by_name in result["values"].items():
            for name, values in by_name.items():
                rows.append({"designs": subset, "objective": name, "samples": int(samples),
                             "eval_s": result["eval_s"][samples][name],
                             **summarize(np.array(values), chosen, runs)})
    return rows


def ground_truth_order() -> list[Design]:
    """The ground-truth table's configurations, best first (benchmarks/data/ground_truth.csv)."""
    truth = read_table().truth()
    return sorted(truth, key=truth.__getitem__)


def subsets_sweep(device: torch.device, counts: tuple[int, ...] = (1, 10, 100), draws: int = 3) -> None:
    """KID's noise from drawing its subsets (same batch, `draws` subset seeds) at each subset count, against
    its noise between evaluation batches, and its time, over the kept generators at the default samples."""
    loaded = load_study_config(STUDY)
    dataset = load_dataset(loaded.base_config.data)
    with tempfile.TemporaryDirectory() as tmp:
        found = kept_generators(device, Path(tmp))
        ev = Evaluator(replace_sections(loaded.base_config, metrics={"samples": BASE_SAMPLES}), dataset, device,
                       Path(tmp) / "cache")
        ev.setup()
        assert ev.reference is not None and ev.kid is not None
        labels = class_labels(dataset.num_classes, ev.per_class, device)
        batches = [[ev.features(generate(g, labels, ev.cfg.model.z_dim, seed=EVAL_SEED + b)) for b in range(draws)]
                   for _, _, g in found]
        between = [statistics.stdev(ev.kid.distance(ev.reference.features, f, 0) for f in fs) for fs in batches]
        print(f"{len(found)} generators, {BASE_SAMPLES} samples; KID x 1000 (SD medians over the generators)")
        print("| kid_subsets | SD from the subsets (same batch) | SD between batches | one KID |")
        print("|---|---|---|---|")
        for count in counts:
            kid = FeatureKID(ev.kid.num_features, count, None)
            start = time.perf_counter()
            within = [statistics.stdev(kid.distance(ev.reference.features, fs[0], s) for s in range(draws))
                      for fs in batches]
            seconds = (time.perf_counter() - start) / (draws * len(batches))
            print(f"| {count} | {1000 * statistics.median(within):.2f} | {1000 * statistics.median(between):.2f} | "
                  f"{seconds:.3f} s |")


def _line(r: dict[str, Any]) -> str:
    lo, hi = r["rho_batches_ci"]
    slo, shi = r["rho_seeds_ci"]
    return (f"| {r['designs']} | {r['objective']} | {r['samples']} | {100 * r['rel_sd']:.1f}% | "
            f"{r['separation']:.1f} | "
            f"{r['rho_batches']:.3f} [{lo:.3f}, {hi:.3f}] | {r['rho_seeds']:.2f} [{slo:.2f}, {shi:.2f}] | "
            f"{r['eval_s']:.2f} s |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the generators (an hpsearch study; re-run to resume)")
    train.add_argument("--workers", type=int, default=2)
    ms = sub.add_parser("measure", help="score the kept generators on fresh batches")
    ms.add_argument("--batches", type=int, default=3)
    ms.add_argument("--device", default="cpu")
    ms.add_argument("--json", type=Path)
    tb = sub.add_parser("table", help="the statistics again, from measure's --json")
    tb.add_argument("json", type=Path)
    sw = sub.add_parser("subsets", help="KID's subset noise vs. its batch noise at 1, 10, 100 subsets")
    sw.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.command == "train":
        return subprocess.call([sys.executable, "-m", "hpsearch", "run", str(STUDY), "--workers", str(args.workers)],
                               cwd=ROOT)
    if args.command == "subsets":
        subsets_sweep(torch.device(args.device))
        return 0
    if args.command == "table":
        result = json.loads(args.json.read_text())
    else:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        result = measure(args.batches, torch.device(args.device))
        result["machine"] = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                             f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
        if args.json:
            args.json.write_text(json.dumps(result) + "\n")
    print(f"{result['machine']}; {len(result['runs'])} generators, {result['batches']} evaluation batches each")
    print("| designs | objective | samples | rel. SD between batches | separation | rho between batches [95% CI] | "
          "rho between seeds [95% CI] | eval time |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table(result):
        print(_line(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
