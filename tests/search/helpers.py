"""A tiny study written into a temporary folder, for the search tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
