"""Many workers on one database: PostgreSQL directly against `hpsearch storage-proxy`, at K = 8, 32, 128 workers.

Each worker runs the real worker loop and storage path (`hpsearch.search.worker.work_loop`: the
study's claim lock, failing stale trials, the target check, trial creation, heartbeats, the tell)
with an objective that does no training: it sleeps `--sleep-s`. The study has K·`--trials-per-worker`
trials on a new PostgreSQL database, created before the workers start (creation is measured by
`benchmarks/cold_start.py`). Workers are forked processes up to `--processes-up-to` (each has its
own interpreter and connections, like `hpsearch worker`; forked after the imports, so they share
torch's pages instead of loading 0.5 GB each) and threads of one process beyond (each with its own
storage object and connections); the table says which.

Measured per run: the server's connections at peak (pg_stat_activity for the database, sampled
every 0.1 s; behind the proxy that is the proxy's), trials finished per second (from the first
worker's start to the last trial's end), the 95th percentile of a trial's storage time (the gap
between one objective call's end and the next one's start in a worker: claim lock, stale check,
target check, creating the trial and telling the last one), workers that failed, and whether
exactly the requested trials finished with none lost or duplicated.

Usage:
    python benchmarks/storage_scale.py [--workers 8,32,128] [--through database,proxy] [--sleep-s 0.5]
        [--trials-per-worker 2] [--processes-up-to 32] [--postgres URL] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import digits_study  # noqa: E402  (benchmarks/ is not a package)
from cold_start import fresh_postgres  # noqa: E402

from hpsearch.search import load_study_config, open_backend, open_study  # noqa: E402
from hpsearch.search.worker import until, work_loop  # noqa: E402


class SleepObjective:
    """An objective that trains nothing: it sleeps, and records when each call began and ended."""

    def __init__(self, sleep_s: float) -> None:
        self.sleep_s, self.on_start, self.current = sleep_s, (lambda: None), None
        self.calls: list[tuple[float, float]] = []

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        self.current = trial.number
        start = time.monotonic()
        time.sleep(self.sleep_s)
        self.calls.append((start, time.monotonic()))
        return float(trial.number)


def _one_worker(study_path: Path, url: str, sleep_s: float, target: int) -> tuple[float, list[tuple[float, float]]]:
    """One worker's loop on `url`; its start time and its objective calls."""
    loaded = load_study_config(study_path, url)
    backend = open_backend(url, loaded.cfg.heartbeat_s, loaded.cfg.max_retry)
    study = open_study(loaded, backend=backend)
    objective = SleepObjective(sleep_s)
    start = time.monotonic()  # opening the storage is a start's cost (cold_start.py), not a trial's
    work_loop(study, backend, objective, until(target))
    return start, objective.calls


@dataclass
class Result:
    through: str
    workers: int
    mode: str
    trials: int
    finished: int
    exact: bool
    failed_workers: int
    peak_connections: int
    trials_per_s: float
    storage_p50_ms: float
    storage_p95_ms: float
    wall_s: float
    first_error: str = ""


def _run_workers(n: int, mode: str, work: Callable[[], tuple[float, list[tuple[float, float]]]]
                 ) -> tuple[list[tuple[float, list[tuple[float, float]]]], list[str]]:
    """`work()` in `n` forked processes or threads started together; their results and errors."""
    if mode == "threads":
        results: list[tuple[float, list[tuple[float, float]]]] = []
        errors: list[str] = []

        def run() -> None:
            try:
                results.append(work())
            except Exception:
                errors.append(traceback.format_exc().strip().splitlines()[-1])

        threads = [threading.Thread(target=run) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results, errors
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        try:
            queue.put(("ok", work()))
        except Exception:
            queue.put(("error", traceback.format_exc().strip().splitlines()[-1]))

    procs = [ctx.Process(target=child) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return [o for kind, o in outcomes if kind == "ok"], [o for kind, o in outcomes if kind == "error"]


@contextmanager
def _peak_connections(admin_url: str, database: str) -> Iterator[list[int]]:
    """Sample the server's connections to `database` every 0.1 s; the list holds the peak when the block ends."""
    engine = sqlalchemy.create_engine(admin_url, poolclass=sqlalchemy.pool.NullPool)
    peak, done = [0], threading.Event()

    def sample() -> None:
        with engine.connect() as conn:
            while not done.is_set():
                count = conn.execute(sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                                     {"d": database}).scalar()
                peak[0] = max(peak[0], int(count or 0))
                conn.rollback()
                time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join(timeout=5)
        engine.dispose()


def one_run(through: str, workers: int, mode: str, sleep_s: float, per_worker: int, postgres: str,
            folder: Path) -> Result:
    folder.mkdir(parents=True)
    trials = workers * per_worker
    with fresh_postgres(postgres) as url:
        database = str(sqlalchemy.engine.make_url(url).database)
        study_path = digits_study(folder / "study.yaml", "scale", url, folder, trials, enqueue=False)
        open_study(load_study_config(study_path), create=True)
        with _proxy_if(through, study_path, folder, workers) as worker_url, \
                _peak_connections(postgres, database) as peak:
            begin = time.monotonic()
            results, errors = _run_workers(workers, mode, lambda: _one_worker(study_path, worker_url, sleep_s, trials))
            wall = time.monotonic() - begin
        stored = optuna.load_study(study_name="scale", storage=url).get_trials()
    finished = [t for t in stored if t.state == TrialState.COMPLETE]
    exact = (len(finished) == trials and len({t.number for t in stored}) == len(stored)
             and not [t for t in stored if t.state in (TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)])
    gaps = [calls[0][0] - start if i == 0 else calls[i][0] - calls[i - 1][1]
            for start, calls in results for i in range(len(calls))]
    ends = [calls[-1][1] for _, calls in results if calls]
    span = (max(ends) - min(start for start, _ in results)) if ends else float("nan")
    quantiles = statistics.quantiles(gaps, n=20) if len(gaps) >= 2 else [float("nan")] * 19
    return Result(through, workers, mode, trials, len(finished), exact, len(errors), peak[0],
                  round(len(finished) / span, 2) if ends else 0.0, round(1000 * statistics.median(gaps), 1)
                  if gaps else float("nan"), round(1000 * quantiles[18], 1), round(wall, 1),
                  errors[0] if errors else "")


@contextmanager
def _proxy_if(through: str, study_path: Path, folder: Path, workers: int) -> Iterator[str]:
    loaded = load_study_config(study_path)
    if through == "database":
        yield loaded.storage.given
        return
    from tests.search.helpers import storage_proxy

    with storage_proxy(study_path, folder / "proxy.log", "--threads", str(max(64, 4 * workers))) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="8,32,128")
    parser.add_argument("--through", default="database,proxy")
    parser.add_argument("--sleep-s", type=float, default=0.5)
    parser.add_argument("--trials-per-worker", type=int, default=2)
    parser.add_argument("--processes-up-to", type=int, default=32)
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hps-scale-") as tmp:
        for through in args.through.split(","):
            for k in map(int, args.workers.split(",")):
                mode = "processes" if k <= args.processes_up_to else "threads"
                result = one_run(through, k, mode, args.sleep_s, args.trials_per_worker, args.postgres,
                                 Path(tmp) / f"{through}-{k}")
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"machine": f"{platform.node()}, {os.cpu_count()} cores",
                                                     "date": time.strftime("%Y-%m-%d"), "sleep_s": args.sleep_s,
                                                     "runs": [asdict(r) for r in results]}, indent=1))
    print("| through | K | workers as | peak connections | trials/s | storage p50 / p95 (ms) | exact | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.through} | {r.workers} | {r.mode} | {r.peak_connections} | {r.trials_per_s} | "
              f"{r.storage_p50_ms} / {r.storage_p95_ms} | {'yes' if r.exact else 'NO'} | {r.failed_workers} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
