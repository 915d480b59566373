"""A tiny study written into a temporary folder, and worker and storage-proxy processes on it, for the search tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[2]

SPACE = {
    "params": {
        "model.z_dim": {"int": [8, 16]},
        "model.g_kernels": {"per_layer": {"int": [3, 5]}},
        "model.g_cond": {"choice": ["concat", "hidden_concat", "cbn_embedding", "cbn_linear"],
                         "when": {"hidden_concat": {"model.g_hidden_layer": {"int": [0, 2]}}}},
        "model.d_cond": {"choice": ["projection", "concat", "acgan"]},
        "train.g_lr": {"float": [1.0e-4, 1.0], "log": True},
    }
}
GOOD = {"z_dim": 12, "g_kernels_0": 4, "g_kernels_1": 4, "g_cond": "cbn_linear", "d_cond": "projection",
        "g_lr": 2.0e-4}
BAD = {**GOOD, "g_lr": 1.0}  # a learning rate of 1: garbage or divergence, pruned either way


def write_study(tmp_path: Path, name: str = "tiny", storage: str | None = None, **overrides: Any) -> Path:
    """Study and space files in `tmp_path`; runs, artifacts and the SQLite file below it too."""
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    study: dict[str, Any] = {
        "study": name,
        "space": "space.yaml",
        "objective": "class_fid",
        "base": {
            "data": {"name": "digits", "image_size": 16},
            "model": {"dense_channels": 8, "g_width": 0.0625, "d_width": 0.0625, "embed_dim": 4},
            "train": {"steps": 60, "batch_size": 16, "eval_every": 20, "log_every": 20, "checkpoint_every": 20,
                      "ema": False},
            "metrics": {"samples": 100, "classifier_steps": 100, "msssim_pairs": 5, "real_samples": 500},
        },
        "sampler": {"name": "tpe", "n_startup_trials": 3, "seed": 0},
        "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_evals": 0},
        "stop": {"n_trials": 6},
        "storage": storage or f"sqlite:///{tmp_path / 'study.db'}",
        "artifacts": str(tmp_path / "artifacts"),
        "runs_dir": str(tmp_path / "trials"),
        "heartbeat_s": 2,
        "enqueue": [GOOD, {**GOOD, "d_cond": "acgan"}, BAD],
    }
    study.update(overrides)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def worker(study_path: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """`hpsearch worker` on one CPU thread, its output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPSEARCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hpsearch.cli", "worker", str(study_path), "--device", "cpu",
                             "--data-dir", str(data_dir), *extra], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def warm_cache(study_path: Path, data_dir: Path, *extra: str) -> None:
    """Train the shared domain classifier once first, so the workers' timing is about trials."""
    proc = worker(study_path, data_dir, "--n-trials", "1", *extra)
    assert proc.wait(timeout=300) == 0, proc.stdout.read() if proc.stdout else ""


def check_exact(storage: str, name: str, n: int) -> None:
    """Exactly `n` finished trials, distinct numbers, none failed, running or waiting."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n, [(t.number, t.state) for t in trials]
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state in (TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)]


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    """Until `path` exists, failing if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "worker ended before writing " + str(path)
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_proxy(study_path: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[str]:
    """`hpsearch storage-proxy` on 127.0.0.1:`port`, returned once it listens (its output appended to `log`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = log.read_text().count("listening on") if log.exists() else 0
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hpsearch.cli", "storage-proxy", str(study_path),
                                 "--port", str(port), *extra], env=env, cwd=ROOT, text=True, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while log.read_text().count("listening on") == before:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return proc


def stop_proxy(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, as a cluster scheduler stops it; it must exit cleanly within 15 s."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


@contextmanager
def storage_proxy(study_path: Path, log: Path, *extra: str) -> Iterator[str]:
    """A running storage proxy for the study's database; yields the workers' `--storage` URL."""
    port = free_port()
    proc = start_proxy(study_path, port, log, *extra)
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        stop_proxy(proc)
