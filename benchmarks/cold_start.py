"""Cold start: N `hpsearch worker` processes started at the same instant on an empty database, many rounds.

This is `docker compose up --scale worker=N` on a new volume, or a SLURM array starting together.
Each round makes a new database (a new PostgreSQL database on `--postgres`, or a new SQLite file
in a folder that does not exist yet), writes a tiny digits study of N trials (4 steps each) on
it, starts the N workers together and waits for them. A round holds when every worker exits 0
and exactly N trials finished (none failed, running or waiting, no number twice). Kinds:

- `postgres`, `sqlite`: N `hpsearch worker` processes on the database;
- `run`: one `hpsearch run --workers N` (it creates the study, then starts N worker processes);
- `proxy`: an `hpsearch storage-proxy` on the new PostgreSQL database, N workers through it.

The dataset cache is shared by the rounds (cold database, warm data), except the first round's.

Usage:
    python benchmarks/cold_start.py [--kinds postgres,sqlite,run,proxy] [--workers 8] [--rounds 20]
        [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import digits_study  # noqa: E402  (benchmarks/ is not a package)

KINDS = ("postgres", "sqlite", "run", "proxy")
TINY = {"train": {"steps": 4, "eval_every": 2, "checkpoint_every": 4, "log_every": 2},
        "metrics": {"samples": 40, "real_samples": 100, "classifier_steps": 50, "msssim_pairs": 5}}


@dataclass
class Round:
    """One cold start: how many workers died, how many trials finished, and the first death's last line."""

    kind: str
    workers: int
    died: int
    finished: int
    bad_trials: int
    seconds: float
    first_error: str = ""

    @property
    def held(self) -> bool:
        return self.died == 0 and self.finished == self.workers and self.bad_trials == 0


@contextmanager
def fresh_postgres(url: str) -> Iterator[str]:
    """A new, empty database on the server at `url`, dropped afterwards."""
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"hps_cold_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _hpsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HPSEARCH_THREADS": "1", "OMP_NUM_THREADS": "1"}


def one_round(kind: str, workers: int, folder: Path, data: Path, postgres: str) -> Round:
    """Start `workers` workers of a new study on a new database at once; see the module docstring."""
    folder.mkdir(parents=True)
    with (fresh_postgres(postgres) if kind != "sqlite" else _sqlite(folder)) as storage:
        study = digits_study(folder / "study.yaml", "cold", storage, folder, workers, enqueue=False, base=TINY)
        start = time.monotonic()
        if kind == "run":
            codes, outputs = _wait([_start(_hpsearch("run", str(study), "--workers", str(workers),
                                                     "--data-dir", str(data)))])
        elif kind == "proxy":
            with _proxy(study, folder / "proxy.log") as url:
                codes, outputs = _wait(_workers(study, data, workers, "--storage", url))
        else:
            codes, outputs = _wait(_workers(study, data, workers))
        seconds = time.monotonic() - start
        trials = optuna.load_study(study_name="cold", storage=storage).get_trials()
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    bad = sum(t.state in (TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING) for t in trials)
    bad += len(trials) - len({t.number for t in trials})
    errors = [out.strip().splitlines()[-1] for code, out in zip(codes, outputs, strict=True)
              if code != 0 and out.strip()]
    return Round(kind, workers, sum(c != 0 for c in codes), finished, bad, round(seconds, 1),
                 errors[0] if errors else "")


@contextmanager
def _sqlite(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / 'new' / 'study.db'}"  # the folder does not exist yet, as on a new volume


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, env=_env(), cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _workers(study: Path, data: Path, n: int, *extra: str) -> list[subprocess.Popen[str]]:
    argv = _hpsearch("worker", str(study), "--device", "cpu", "--data-dir", str(data), *extra)
    return [_start(argv) for _ in range(n)]


def _wait(procs: list[subprocess.Popen[str]]) -> tuple[list[int], list[str]]:
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    return [p.returncode for p in procs], outputs


def _proxy(study: Path, log: Path) -> contextlib.AbstractContextManager[str]:
    sys.path.insert(0, str(ROOT))
    from tests.search.helpers import storage_proxy

    return storage_proxy(study, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {KINDS}")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", type=Path, help="write the rounds here as JSON")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",")]
    if not set(kinds) <= set(KINDS) or not 1 <= args.workers <= 64 or not 1 <= args.rounds <= 1000:
        parser.error(f"--kinds from {KINDS}; --workers in 1..64; --rounds in 1..1000")
    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="hps-cold-") as tmp:
        for kind in kinds:
            for i in range(args.rounds):
                result = one_round(kind, args.workers, Path(tmp) / f"{kind}-{i}", Path(tmp) / "data", args.postgres)
                results.append(result)
                print(f"{kind} round {i + 1}/{args.rounds}: {'held' if result.held else 'BROKE'}; died "
                      f"{result.died}/{result.workers}, finished {result.finished}, bad {result.bad_trials}, "
                      f"{result.seconds:.0f} s {result.first_error}", flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"machine": f"{platform.node()}, {os.cpu_count()} cores",
                                                     "date": time.strftime("%Y-%m-%d"),
                                                     "rounds": [asdict(r) for r in results]}, indent=1))
    for kind in kinds:
        mine = [r for r in results if r.kind == kind]
        print(f"{kind}: {sum(r.held for r in mine)}/{len(mine)} rounds held; workers died "
              f"{sum(r.died for r in mine)}/{sum(r.workers for r in mine)}")
    return 0 if all(r.held for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
