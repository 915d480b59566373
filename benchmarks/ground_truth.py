"""A search space with a known truth, and hpsearch's search and confirmation replayed on it (issue 25).

    python benchmarks/ground_truth.py build --workers 2   # train the grid: an hpsearch study, resumable
    python benchmarks/ground_truth.py table               # the study -> benchmarks/data/ground_truth.csv
    python benchmarks/ground_truth.py truth               # the true ranking, and whether pairing seeds helps
    python benchmarks/ground_truth.py replay --replays 200 --json gt.json --png benchmarks/ground_truth.png

The grid (`benchmarks/ground_truth/study.yaml`): digits 16x16, `digits_quick`'s base, every g_cond (4) x
d_cond (4) x d_spectral_norm (2), the rest fixed at digits_quick's enqueued trial, each trained to 1500
steps with several training seeds (the seed is a searched parameter, every combination enqueued, no
pruning): each run stores its learning curve (the objective at every evaluation), its kept generator's
value and that generator re-measured on two other evaluation batches. The table is those runs.

The truth of a configuration is the mean over its seeds of its runs' re-measured values (the kept
generator scored on batches that did not choose it: what `hpsearch confirm` measures).

The replay runs the real Optuna samplers and pruners against the table: a trial of configuration c
draws one of c's stored runs, reports its stored curve (so Hyperband prunes as it would have) and
costs the steps it trained; the search's single-run best is then confirmed by each strategy, whose
runs draw c's true mean times one plus a relative residual from the pool of all runs' residuals (the
table holds only a few seeds per configuration, fewer than a 3 x 5 confirmation asks for).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from benchmarks._common import write_json  # noqa: E402
from hpsearch.racing import RaceSettings, replay  # noqa: E402
from hpsearch.stats import difference, summarize  # noqa: E402

STUDY = ROOT / "benchmarks" / "ground_truth" / "study.yaml"
TABLE = ROOT / "benchmarks" / "data" / "ground_truth.csv"
G_COND = ("concat", "hidden_concat", "cbn_embedding", "cbn_linear")
D_COND = ("projection", "concat", "hidden_concat", "acgan")
D_SN = (True, False)
STEPS = (250, 500, 750, 1000, 1250, 1500)
FULL = STEPS[-1]
Config = tuple[str, str, bool]


# ---------------------------------------------------------------- the table

@dataclass
class Run:
    """One trained (configuration, seed): its curve, its kept generator's value, and that value re-measured."""

    seed: int
    curve: dict[int, float]
    kept: float
    remeasured: list[float]
    collapsed: bool
    wall_s: float

    @property
    def independent(self) -> float:
        """The kept generator's value on batches that did not choose it (mean of the re-measurements)."""
        return float(np.mean(self.remeasured)) if self.remeasured else math.nan


@dataclass
class Table:
    runs: dict[Config, list[Run]] = field(default_factory=dict)

    @property
    def configs(self) -> list[Config]:
        return sorted(self.runs, key=lambda c: (G_COND.index(c[0]), D_COND.index(c[1]), not c[2]))

    def truth(self) -> dict[Config, float]:
        return {c: float(np.mean([r.independent for r in runs])) for c, runs in self.runs.items()}

    def best(self) -> Config:
        truth = self.truth()
        return min(truth, key=truth.__getitem__)

    def within_noise(self) -> set[Config]:
        """Configurations not distinguishable from the best at the table's seeds (Welch 95% interval of the
        difference of their re-measured values contains 0), the best included."""
        best = [r.independent for r in self.runs[self.best()]]
        return {c for c, runs in self.runs.items()
                if c == self.best() or not difference([r.independent for r in runs], best).distinguishable}

    def residuals(self) -> np.ndarray:
        """Every run's re-measured value relative to its configuration's mean (value / mean - 1), scaled by
        sqrt(n / (n - 1)) so that their spread is the runs' spread, not the smaller spread about an estimated
        mean. Relative, because FID's spread grows with FID (0.5 at 6, tens at 100 here)."""
        pool = []
        for runs in self.runs.values():
            values = np.array([r.independent for r in runs])
            if values.size >= 2:
                pool.extend((values / values.mean() - 1) * math.sqrt(values.size / (values.size - 1)))
        return np.array(pool)


def read_study() -> Table:
    from hpsearch.search import load_study_config
    from hpsearch.search.record import read_trials
    from hpsearch.search.study import open_study

    loaded = load_study_config(STUDY)
    table = Table()
    for t in read_trials(open_study(loaded)):
        if t.state != optuna.trial.TrialState.COMPLETE or t.value is None:
            continue
        config = (t.params["g_cond"], t.params["d_cond"], bool(t.params["d_spectral_norm"]))
        table.runs.setdefault(config, []).append(Run(
            int(t.params["seed"]), {int(s): float(v) for s, v in t.intermediate.items()}, float(t.value),
            [float(v) for v in t.noise], t.kept_collapsed(loaded.cfg.objective), float(t.wall_s or 0.0)))
    return table


def write_table(table: Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["g_cond", "d_cond", "d_spectral_norm", "seed", *(f"class_fid_{s}" for s in STEPS), "kept",
                      "remeasured_1", "remeasured_2", "collapsed", "wall_s"])
        for config in table.configs:
            for run in sorted(table.runs[config], key=lambda r: r.seed):
                out.writerow([*config, run.seed, *(f"{run.curve.get(s, math.nan):.4f}" for s in STEPS),
                              f"{run.kept:.4f}", *(f"{v:.4f}" for v in (run.remeasured + [math.nan] * 2)[:2]),
                              run.collapsed, f"{run.wall_s:.1f}"])


def read_table(path: Path = TABLE) -> Table:
    table = Table()
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            config = (row["g_cond"], row["d_cond"], row["d_spectral_norm"] == "True")
            remeasured = [float(row[k]) for k in ("remeasured_1", "remeasured_2") if row[k] != "nan"]
            table.runs.setdefault(config, []).append(Run(
                int(row["seed"]), {s: float(row[f"class_fid_{s}"]) for s in STEPS}, float(row["kept"]), remeasured,
                row["collapsed"] == "True", float(row["wall_s"])))
    return table


def machine() -> str:
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"


def name(config: Config) -> str:
    return f"{config[0]} + {config[1]}, {'SN' if config[2] else 'no SN'} in D"


# ---------------------------------------------------------------- truth and pairing

def truth_rows(table: Table) -> list[dict[str, Any]]:
    """The true ranking: each configuration's mean re-measured value over its seeds, with its 95% interval."""
    best = [r.independent for r in table.runs[table.best()]]
    rows = []
    for config, mean in sorted(table.truth().items(), key=lambda kv: kv[1]):
        runs = table.runs[config]
        s = summarize([r.independent for r in runs])
        d = difference([r.independent for r in runs], best)
        rows.append({"config": name(config), "mean": mean, "low": s.low, "high": s.high, "seeds": s.n,
                     "sd": s.sd, "collapsed": sum(r.collapsed for r in runs),
                     "within_noise_of_best": config == table.best() or not d.distinguishable})
    return rows


def pairing(table: Table, value: Callable[[Run], float], boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Does pairing seeds shrink the spread of differences between two configurations?

    For every pair of configurations (a, b): the variance of the paired differences a_s - b_s over
    the seeds s both have (unbiased for var a + var b - 2 cov), against var(a) + var(b) (the
    variance of the difference of two runs with unrelated seeds; each unbiased). Their ratio is
    1 - rho, rho the correlation a shared seed induces between configurations; its 95% interval is
    a bootstrap over configurations.
    """
    configs = [c for c in table.configs if len(table.runs[c]) >= 2]
    by_seed = {c: {r.seed: value(r) for r in table.runs[c]} for c in configs}

    def ratio(chosen: list[Config]) -> float:
        paired, unpaired = [], []
        for a, b in itertools.combinations(range(len(chosen)), 2):
            if chosen[a] == chosen[b]:
                continue
            va, vb = by_seed[chosen[a]], by_seed[chosen[b]]
            common = sorted(set(va) & set(vb))
            if len(common) >= 2:
                paired.append(np.var([va[s] - vb[s] for s in common], ddof=1))
                unpaired.append(np.var([va[s] for s in common], ddof=1) + np.var([vb[s] for s in common], ddof=1))
        return float(np.mean(paired) / np.mean(unpaired))

    rng = np.random.default_rng(seed)
    point = ratio(configs)
    draws = [ratio([configs[i] for i in rng.integers(0, len(configs), len(configs))]) for _ in range(boot)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"ratio": point, "low": float(low), "high": float(high), "configs": len(configs)}


# ---------------------------------------------------------------- replay

@dataclass
class Searched:
    """One replayed search: per trial its configuration, value (None: pruned) and steps trained."""

    trials: list[tuple[Config, float | None, int]]

    def prefix(self, n: int) -> Searched:
        return Searched(self.trials[:n])

    @property
    def steps(self) -> int:
        return sum(s for _, _, s in self.trials)

    def top(self, k: int) -> list[Config]:
        """The best `k` distinct configurations by single-run value (as `hpsearch confirm` chooses them)."""
        done = sorted(((v, c) for c, v, _ in self.trials if v is not None), key=lambda vc: vc[0])
        return list(dict.fromkeys(c for _, c in done))[:k]


def replay_search(table: Table, sampler: str, pruner: str, n_trials: int, seed: int) -> Searched:
    """The search as hpsearch runs it (sampler and pruner built by hpsearch from digits_quick's sections),
    against the table: a trial of configuration c draws one of c's runs and reports its curve."""
    from hpsearch.search import load_study_config
    from hpsearch.search.pruners import make_pruner
    from hpsearch.search.samplers import make_sampler
    from hpsearch.search.study_file import PrunerConfig

    quick = load_study_config(ROOT / "studies" / "digits_quick.yaml").cfg
    sampler_cfg = type(quick.sampler)(**{**quick.sampler.__dict__, "name": sampler, "seed": seed})
    pruner_cfg = quick.pruner if pruner == "hyperband" else PrunerConfig(name="none")
    study = optuna.create_study(sampler=make_sampler(sampler_cfg), pruner=make_pruner(pruner_cfg, FULL, STEPS[0]))
    first = quick.enqueue[0]
    study.enqueue_trial({k: first[k] for k in ("g_cond", "d_cond", "d_spectral_norm")})
    rng = np.random.default_rng(seed)
    trials: list[tuple[Config, float | None, int]] = []
    for _ in range(n_trials):
        trial = study.ask()
        config = (trial.suggest_categorical("g_cond", list(G_COND)), trial.suggest_categorical("d_cond", list(D_COND)),
                  bool(trial.suggest_categorical("d_spectral_norm", list(D_SN))))
        runs = table.runs[config]
        run = runs[rng.integers(len(runs))]
        for step in STEPS:
            trial.report(run.curve[step], step)
            if step < FULL and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                trials.append((config, None, step))
                break
        else:
            study.tell(trial, run.kept)
            trials.append((config, run.kept, FULL))
    return Searched(trials)


@dataclass
class Outcome:
    named: Config
    confirm_runs: int
    stop: str = ""


def confirm_fixed(candidates: list[Config], seeds: int, draw: Callable[[Config], float]) -> Outcome:
    means = {c: np.mean([draw(c) for _ in range(seeds)]) for c in candidates}
    return Outcome(min(means, key=means.__getitem__), len(candidates) * seeds)


def confirm_race(candidates: list[Config], settings: RaceSettings, draw: Callable[[Config], float]) -> Outcome:
    if len(candidates) == 1:
        return Outcome(candidates[0], 0, "one candidate")
    runs = {c: {i: draw(c) for i in range(settings.max_seeds)} for c in candidates}
    state = replay(settings, candidates, runs)
    return Outcome(state.leader if state.survivors else candidates[0], state.spent, state.stop or "")


Strategy = Callable[[list[Config], Callable[[Config], float]], Outcome]
FIXED: dict[str, Strategy] = {
    "none": lambda top, _draw: Outcome(top[0], 0),
    "top 3 x 3": lambda top, draw: confirm_fixed(top, 3, draw),
    "top 3 x 5": lambda top, draw: confirm_fixed(top, 5, draw),
}


def race_strategy(settings: RaceSettings) -> tuple[str, Strategy]:
    """A race as a named strategy, e.g. "race 3-10 welch" (first round, max seeds, test)."""
    label = (f"race {settings.first}-{settings.max_seeds} {'paired' if settings.paired else 'welch'}"
             + (f" budget {settings.budget}" if settings.budget else ""))
    return label, lambda top, draw: confirm_race(top, settings, draw)


def strategies(races: list[RaceSettings]) -> dict[str, Strategy]:
    """The fixed strategies, then each race."""
    return {**FIXED, **dict(race_strategy(settings) for settings in races)}


def run_replays(table: Table, replays: int, races: list[RaceSettings], samplers: list[str], pruners: list[str],
                trials: list[int], jobs: int = 1) -> list[dict[str, Any]]:
    """Every sampler x pruner replayed `replays` times (in `jobs` processes), each search's first 8, 12, 20
    trials confirmed by every strategy. A search's first n trials are the search of n trials: neither the
    samplers nor Hyperband look at the total."""
    combos = [(table, replays, races, sampler, pruner, trials) for sampler in samplers for pruner in pruners]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return [row for rows in pool.starmap(_replay_combo, combos) for row in rows]
    return [row for combo in combos for row in _replay_combo(*combo)]


def _replay_combo(table: Table, replays: int, races: list[RaceSettings], sampler: str, pruner: str,
                  trials: list[int]) -> list[dict[str, Any]]:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    truth, best, near = table.truth(), table.best(), table.within_noise()
    pool = table.residuals()
    start = time.perf_counter()
    outcomes: dict[tuple[int, str], list[tuple[Outcome, int]]] = {}
    for r in range(replays):
        searched = replay_search(table, sampler, pruner, max(trials), seed=r)
        rng = np.random.default_rng(10_000 + r)

        def draw(c: Config, rng: np.random.Generator = rng) -> float:
            return truth[c] * (1 + float(pool[rng.integers(pool.size)]))

        for n in trials:
            part = searched.prefix(n)
            top = part.top(3)
            if top:
                for strategy, confirm in strategies(races).items():
                    outcomes.setdefault((n, strategy), []).append((confirm(top, draw), part.steps))
    rows = []
    for (n, strategy), got in outcomes.items():
        named = [o.named for o, _ in got]
        regret = np.array([truth[c] - truth[best] for c in named])
        cost = np.array([steps + o.confirm_runs * FULL for o, steps in got])
        correct, close = sum(c == best for c in named), sum(c in near for c in named)
        rows.append({"sampler": sampler, "pruner": pruner, "trials": n, "strategy": strategy, "replays": len(got),
                     "p_best": correct / len(got), "p_best_ci": _wilson(correct, len(got)),
                     "p_within_noise": close / len(got), "p_within_noise_ci": _wilson(close, len(got)),
                     "regret": float(regret.mean()), "regret_ci": _mean_ci(regret),
                     "cost_steps": float(cost.mean()),
                     "confirm_runs": float(np.mean([o.confirm_runs for o, _ in got])),
                     "stops": dict(Counter(o.stop for o, _ in got if o.stop))})
    print(f"{sampler} + {pruner}: {replays} replays in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return rows


def _wilson(k: int, n: int) -> list[float]:
    z = 1.959964
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (
        1 + z * z / n)
    return [centre - half, centre + half]


def _mean_ci(x: np.ndarray) -> list[float]:
    s = summarize(list(x))
    return [s.low, s.high] if s.n >= 2 else [math.nan, math.nan]


def figure(rows: list[dict[str, Any]], path: Path, sampler: str = "tpe", pruner: str = "hyperband") -> None:
    """P(the named design is the table's best), with its 95% interval, against the mean cost in steps: one line
    per strategy, its points at 8, 12 and 20 trials. (P(within the table's noise) is near 1 for every
    strategy here: the enqueued first trial is within the noise of the best at 3 seeds.)"""
    import plotly.graph_objects as go

    fig = go.Figure()
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        pts = sorted((r for r in rows if r["strategy"] == strategy and r["sampler"] == sampler
                      and r["pruner"] == pruner), key=lambda r: r["cost_steps"])
        fig.add_trace(go.Scatter(
            x=[r["cost_steps"] / 1000 for r in pts], y=[r["p_best"] for r in pts], mode="lines+markers+text",
            name=strategy, text=[str(r["trials"]) for r in pts], textposition="top center",
            error_y={"type": "data", "symmetric": False, "array": [r["p_best_ci"][1] - r["p_best"] for r in pts],
                     "arrayminus": [r["p_best"] - r["p_best_ci"][0] for r in pts], "thickness": 1}))
    fig.update_layout(title=f"Digits ground truth, {sampler} + {pruner}: P(named design is the best) against cost "
                            "(labels: trials)",
                      xaxis_title="training steps, search + confirmation (thousands; mean of the replays)",
                      yaxis_title="P(named design = the table's best), 95% CI", width=1000, height=560)
    fig.write_image(str(path))


# ---------------------------------------------------------------- commands

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="train the grid (an hpsearch study; re-run to resume)")
    build.add_argument("--workers", type=int, default=2)
    sub.add_parser("table", help="the study's runs -> benchmarks/data/ground_truth.csv")
    truth = sub.add_parser("truth", help="the true ranking and the pairing measurement, from the table")
    truth.add_argument("--json", type=Path)
    rp = sub.add_parser("replay", help="replay searches and confirmations on the table")
    rp.add_argument("--replays", type=int, default=200)
    rp.add_argument("--samplers", default="tpe,random,gp")
    rp.add_argument("--pruners", default="hyperband,none")
    rp.add_argument("--trials", default="8,12,20")
    rp.add_argument("--races", default="3-10-welch,2-10-welch,2-5-welch,3-10-paired",
                    help="races to compare: FIRST-MAXSEEDS-TEST[-BUDGET], comma-separated")
    rp.add_argument("--jobs", type=int, default=1, help="processes (one sampler x pruner each)")
    rp.add_argument("--json", type=Path)
    rp.add_argument("--png", type=Path)
    fg = sub.add_parser("figure", help="the replay's figure again, from its --json")
    fg.add_argument("json", type=Path)
    fg.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.command == "build":
        return subprocess.call([sys.executable, "-m", "hpsearch", "run", str(STUDY), "--workers", str(args.workers)],
                               cwd=ROOT)
    if args.command == "table":
        table = read_study()
        write_table(table, TABLE)
        print(f"{sum(map(len, table.runs.values()))} runs of {len(table.runs)} configurations -> {TABLE}")
        return 0
    if args.command == "figure":
        figure(json.loads(args.json.read_text())["rows"], args.png)
        return 0
    table = read_table()
    if args.command == "truth":
        rows = truth_rows(table)
        for r in rows:
            print(f"| {r['config']} | {r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}] | {r['sd']:.2f} | "
                  f"{r['seeds']} | {r['collapsed']} | {'yes' if r['within_noise_of_best'] else 'no'} |")
        pairs = {"remeasured": pairing(table, lambda r: r.independent), "kept": pairing(table, lambda r: r.kept),
                 "log remeasured (every configuration weighs the same)": pairing(table,
                                                                                 lambda r: math.log(r.independent))}
        for what, p in pairs.items():
            print(f"pairing, {what}: var(paired diff) / var(unpaired diff) = {p['ratio']:.2f} "
                  f"[{p['low']:.2f}, {p['high']:.2f}] (95% bootstrap over {p['configs']} configurations)")
        write_json(args.json, {"machine": machine(), "truth": rows, "pairing": pairs})
        return 0
    races = []
    for spec in args.races.split(","):
        first, most, test, *budget = spec.split("-")
        races.append(RaceSettings(first=int(first), max_seeds=int(most), paired=test == "paired",
                                  budget=int(budget[0]) if budget else None))
    rows = run_replays(table, args.replays, races, args.samplers.split(","), args.pruners.split(","),
                       [int(n) for n in args.trials.split(",")], args.jobs)
    for r in rows:
        print(f"| {r['sampler']} | {r['pruner']} | {r['trials']} | {r['strategy']} | {r['p_best']:.2f} | "
              f"{r['p_within_noise']:.2f} [{r['p_within_noise_ci'][0]:.2f}, {r['p_within_noise_ci'][1]:.2f}] | "
              f"{r['regret']:.2f} [{r['regret_ci'][0]:.2f}, {r['regret_ci'][1]:.2f}] | {r['cost_steps'] / 1000:.1f}k | "
              f"{r['confirm_runs']:.1f} |")
    write_json(args.json, {"machine": machine(), "races": args.races, "replays": args.replays, "rows": rows})
    if args.png:
        figure(rows, args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
