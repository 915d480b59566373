"""The trial runner's best generator: kept on improvement only, resumed from its stored value, loadable alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpsearch.checkpoint import BEST_GENERATOR
from hpsearch.errors import CheckpointError
from hpsearch.generation import load_generator
from hpsearch.models import build_generator
from hpsearch.runner import BestKeeper, run_training
from tests.conftest import random_dataset, tiny_config

CPU = torch.device("cpu")


def test_the_best_generator_is_saved_on_improvement_only_and_resumes_from_its_value(tmp_path: Path) -> None:
    cfg, data = tiny_config(), random_dataset()
    gen = build_generator(cfg.model, 16, 1, 3)
    keeper = BestKeeper("class_fid", cfg, data, tmp_path, resume=False)
    keeper(10, gen, {"class_fid": 5.0})
    saved = (tmp_path / BEST_GENERATOR).read_bytes()
    for step, value in ((20, 6.0), (30, float("nan")), (40, float("inf"))):  # worse, or not a number: kept
        keeper(step, gen, {"class_fid": value})
    assert (tmp_path / BEST_GENERATOR).read_bytes() == saved and (keeper.best.value, keeper.best.step) == (5.0, 10)
    keeper(50, gen, {"class_fid": 4.0})
    assert (keeper.best.value, keeper.best.step) == (4.0, 50)
    assert load_generator(tmp_path, CPU).step == 50  # a run folder stands for its best generator

    resumed = BestKeeper("class_fid", cfg, data, tmp_path, resume=True)
    assert (resumed.best.value, resumed.best.step) == (4.0, 50)
    assert BestKeeper("fid", cfg, data, tmp_path, resume=True).best.step == 0  # another objective starts afresh
    assert BestKeeper("class_fid", cfg, data, tmp_path, resume=False).best.step == 0
    (tmp_path / BEST_GENERATOR).write_bytes(b"torn")
    assert BestKeeper("class_fid", cfg, data, tmp_path, resume=True).best.step == 0  # damaged: chosen again


def test_the_raw_generator_is_not_in_an_ema_best_file(tmp_path: Path) -> None:
    cfg, data = tiny_config(train={"ema": True}), random_dataset()
    BestKeeper("class_fid", cfg, data, tmp_path, resume=False)(2, build_generator(cfg.model, 16, 1, 3),
                                                                {"class_fid": 1.0})
    assert load_generator(tmp_path / BEST_GENERATOR, CPU).step == 2
    with pytest.raises(CheckpointError, match="holds only the EMA generator"):
        load_generator(tmp_path / BEST_GENERATOR, CPU, use_ema=False)


def test_a_run_without_metrics_keeps_no_best_generator(tmp_path: Path) -> None:
    cfg = tiny_config(metrics={"enabled": False})
    best = run_training(cfg, random_dataset(), tmp_path, CPU, tmp_path / "cache", progress=False)
    assert best.step == 0 and not (tmp_path / BEST_GENERATOR).exists() and (tmp_path / "samples.png").is_file()
