"""Report generation time for a large study: `hpsearch report` on a synthetic 500-trial study.

Builds a study of `--trials` trials in a temporary SQLite file, on the paper's space
(`search_spaces/dogan2020.yaml`, 32×32: 21 parameters, 3 of them branch-only) with the
cifar10 study's base config: parameters drawn at random, 6 evaluations per complete trial
(stored `evals` with every monitored metric), a share pruned after 1 or 3 evaluations as
Hyperband would, a few failed, and a small sample-grid artifact per evaluation. Then times
`build_report` (parallel coordinates, importances, history, curves, monitoring, top-K table
with grids, plotly.js, and the static PNG when Chromium is there), `--rounds` times.
Target: under 30 s on the 2-core development machine.

Usage:
    python benchmarks/report_speed.py [--trials 500] [--rounds 3] [--no-png] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import yaml
from _common import write_json  # benchmarks/ is on sys.path when a script runs
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
from PIL import Image

from hpsearch.reports import build_report
from hpsearch.search import LoadedStudy, load_study_config, open_study

ROOT = Path(__file__).resolve().parents[1]
EVAL_STEPS = [2000 * i for i in range(1, 7)]


def _study_file(folder: Path) -> Path:
    study = yaml.safe_load((ROOT / "studies" / "dogan2020_cifar10.yaml").read_text())
    study.update({"study": "synthetic", "space": str(ROOT / "search_spaces" / "dogan2020.yaml"),
                  "storage": f"sqlite:///{folder / 'study.db'}", "artifacts": str(folder / "artifacts"),
                  "runs_dir": str(folder / "trials"), "enqueue": []})
    study["base"]["train"]["steps"] = EVAL_STEPS[-1]
    path = folder / "synthetic.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _grid_png(seed: int) -> bytes:
    image = Image.effect_noise((160, 160), 40 + seed % 50).convert("RGB")  # 10 classes × 8 samples of 16×16
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _synthetic_trial(i: int, rng: random.Random, loaded: LoadedStudy, store: FileSystemArtifactStore,
                     params_source: optuna.Study) -> optuna.trial.FrozenTrial:
    ask = params_source.ask()
    cfg = loaded.space.suggest(ask, loaded.cfg.base, loaded.n_blocks)
    params_source.tell(ask, 0.0)
    quality = 10 + 200 * rng.random() * (0.3 if cfg.model.d_cond == "projection" else 1.0)
    roll = rng.random()
    state = TrialState.FAIL if roll < 0.03 else TrialState.PRUNED if roll < 0.6 else TrialState.COMPLETE
    n_evals = {TrialState.COMPLETE: 6, TrialState.PRUNED: rng.choice([1, 3]), TrialState.FAIL: 2}[state]
    evals, grids = [], {}
    for k, step in enumerate(EVAL_STEPS[:n_evals]):
        class_fid = quality * (1 + 3 * math.exp(-k)) * (1 + 0.05 * rng.random())
        evals.append({"step": step, "fid": class_fid * 0.6, "class_fid": class_fid, "cond_acc": 1 - class_fid / 400,
                      "msssim": 0.1 + 0.2 * rng.random(), "grad_norm_g_mean": rng.random(), "grad_norm_g_max": 2.0,
                      "grad_norm_d_mean": rng.random(), "grad_norm_d_max": 3.0, "loss_d": 1.0, "loss_g": 0.5})
        artifact = str(uuid.uuid4())
        store.write(artifact, io.BytesIO(_grid_png(i)))
        grids[str(step)] = artifact
    intermediate = {int(e["step"]): float(e["class_fid"]) for e in evals}
    return optuna.trial.create_trial(
        state=state, params=ask.params, distributions=ask.distributions, intermediate_values=intermediate,
        value=min(intermediate.values()) if state == TrialState.COMPLETE else None,
        user_attrs={"config": cfg.to_dict(), "evals": evals, "grids": grids, "wall_s": 600.0 * n_evals / 6,
                    "device": "cuda:0", "steps": EVAL_STEPS[-1]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-report-bench-"))
    loaded = load_study_config(_study_file(folder))
    study = open_study(loaded, create=True)
    (folder / "artifacts").mkdir()
    store = FileSystemArtifactStore(str(folder / "artifacts"))
    rng = random.Random(0)
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    study.add_trials([_synthetic_trial(i, rng, loaded, store, source) for i in range(args.trials)])
    print(f"synthetic study of {args.trials} trials written in {time.perf_counter() - start:.1f} s", flush=True)

    times = []
    for r in range(args.rounds):
        start = time.perf_counter()
        report = build_report(loaded, folder / "report", top_k=10, png=not args.no_png)
        times.append(time.perf_counter() - start)
        print(f"round {r}: {times[-1]:.1f} s, {len(report.table)} finished trials, figures "
              f"{sorted(report.figures)}, notes {report.notes}", flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
              "trials": args.trials, "finished": len(report.table), "png": not args.no_png,
              "png_written": (folder / "report" / "parallel_coordinates.png").exists(),
              "seconds": times, "median_s": statistics.median(times),
              "index_html_bytes": (folder / "report" / "index.html").stat().st_size}
    print(json.dumps(result, indent=2))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
