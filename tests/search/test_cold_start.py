"""A cluster that starts cold: N workers open the same study at the same instant on an empty database.

This is `docker compose up --scale worker=N` on a new volume, or a SLURM array starting together.
Each round creates a new database (a new PostgreSQL database, or a new SQLite file), forks N
processes that wait on one barrier and then do what a worker start does to the storage
(`study_backend` creates Optuna's tables, `open_study(create=True)` the study, its attributes
and its enqueued trials), and asserts that none failed and that the study holds its attributes
once and each enqueued trial once. Before the creation locks, 7 of 24 PostgreSQL workers and 5
of 15 SQLite workers died this way (duplicate keys in the catalog or in alembic_version), and one
read a half-created study as a changed one.

`test_cold_start_of_real_workers` runs the same start with real `hpsearch worker` processes (and
`hpsearch run --workers`, and workers behind `hpsearch storage-proxy`) to the end of their trials,
one round each; `benchmarks/cold_start.py` runs it for many rounds (figures in benchmarks/README.md).
"""

from __future__ import annotations

import multiprocessing
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.search import TrialRecord, load_study_config, open_study, plan_confirmation
from hpsearch.search.study import study_backend
from tests.search.helpers import GOOD, ROOT, write_study

sys.path.insert(0, str(ROOT / "benchmarks"))
import cold_start  # noqa: E402  (benchmarks/ is not a package)

WORKERS, ROUNDS = 8, 20
ENQUEUED = [GOOD, {**GOOD, "d_cond": "acgan"}, {**GOOD, "z_dim": 9}]


def _start(study_path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    """One worker's start, from the barrier on (a forked child: its own connections and files)."""
    try:
        loaded = load_study_config(study_path)
        barrier.wait(timeout=60)
        backend = study_backend(loaded)
        open_study(loaded, create=True, backend=backend)
    except BaseException:  # reported to the parent, whatever it is
        errors.put(traceback.format_exc())
        raise SystemExit(1) from None


def _plan(study_path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    """One `hpsearch confirm`'s planning of 2 configurations × 2 seeds, from the barrier on."""
    try:
        loaded = load_study_config(study_path)
        sources = [TrialRecord(number=n, state=TrialState.COMPLETE) for n in (0, 1)]
        barrier.wait(timeout=60)
        plan_confirmation(loaded, sources, seeds=2, samples=100)
    except BaseException:
        errors.put(traceback.format_exc())
        raise SystemExit(1) from None


def _start_together(study_path: Path, n: int, target: Callable[..., None] = _start) -> list[str]:
    """`n` forked starts released at once; the tracebacks of those that failed."""
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(str(study_path), barrier, errors)) for _ in range(n)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    failed = [errors.get(timeout=5) for p in procs if p.exitcode != 0]
    assert all(p.exitcode is not None for p in procs), "a start hung"
    return failed


def _check_created_once(storage: str, name: str) -> None:
    study = optuna.load_study(study_name=name, storage=storage)
    waiting = [t.params for t in study.get_trials() if t.state == TrialState.WAITING]
    assert len(waiting) == len(ENQUEUED), waiting  # each enqueued trial once, none twice
    assert {"space_fingerprint", "objective", "base", "artifacts_dir"} <= set(study.user_attrs)


@pytest.mark.slow
def test_cold_start_on_a_fresh_postgres_database(tmp_path: Path, fresh_postgres: Callable[[], str]) -> None:
    for round_ in range(ROUNDS):
        url = fresh_postgres()
        (tmp_path / f"r{round_}").mkdir()
        path = write_study(tmp_path / f"r{round_}", storage=url, enqueue=ENQUEUED)
        failed = _start_together(path, WORKERS)
        assert not failed, f"round {round_}: {len(failed)} of {WORKERS} starts failed:\n{failed[0]}"
        _check_created_once(url, "tiny")


@pytest.mark.slow
def test_cold_start_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        folder = tmp_path / f"r{round_}"
        folder.mkdir()
        path = write_study(folder, storage=f"sqlite:///{folder / 'new' / 'study.db'}", enqueue=ENQUEUED)
        failed = _start_together(path, WORKERS)
        assert not failed, f"round {round_}: {len(failed)} of {WORKERS} starts failed:\n{failed[0]}"
        _check_created_once(f"sqlite:///{folder / 'new' / 'study.db'}", "tiny")


@pytest.mark.slow
def test_two_confirms_started_together_plan_each_run_once(tmp_path: Path) -> None:
    """Issue 24: two `hpsearch confirm` at once enqueued a run twice in 1 of 3 rounds (the plan was read and
    rewritten outside the claim lock); the extra run stayed WAITING forever."""
    for round_ in range(10):
        folder = tmp_path / f"r{round_}"
        folder.mkdir()
        path = write_study(folder, enqueue=[])
        failed = _start_together(path, 2, _plan)
        assert not failed, failed[0]
        companion = optuna.load_study(study_name="tiny.confirm", storage=f"sqlite:///{folder / 'study.db'}")
        planned = [t.system_attrs["fixed_params"] for t in companion.get_trials()]  # enqueued, not yet run
        runs = sorted((p["source"], p["seed_index"]) for p in planned)
        assert runs == [(0, 0), (0, 1), (1, 0), (1, 1)], f"round {round_}: {runs}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", cold_start.KINDS)
def test_cold_start_of_real_workers(kind: str, tmp_path: Path, postgres_url: str) -> None:
    """4 real worker processes at once on a new database: all exit 0 and exactly 4 trials finish."""
    result = cold_start.one_round(kind, 4, tmp_path / "round", tmp_path / "data", postgres_url)
    assert result.held, result
