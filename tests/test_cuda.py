"""The CUDA path (bf16 autocast, channels-last, device-resident data); skipped without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpsearch.training import train
from tests.conftest import random_dataset, tiny_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("loss", ["hinge", "bce", "wgan_gp"])
def test_training_on_cuda_with_bf16_and_channels_last(tmp_path: Path, loss: str) -> None:
    cfg = tiny_config(32, 3, model={"d_cond": "acgan" if loss == "bce" else "projection"},
                      train={"loss": loss, "steps": 6, "amp": True, "channels_last": True})
    state = train(cfg, random_dataset(channels=3, size=32), tmp_path, torch.device("cuda"), progress=False)
    assert state.step == 6
    assert all(torch.isfinite(p).all() for p in state.generator.parameters())
    assert next(state.generator.parameters()).device.type == "cuda"


def test_cuda_checkpoint_resumes_and_samples_on_cpu(tmp_path: Path) -> None:
    from hpsearch.generation import class_labels, generate, load_generator

    cfg = tiny_config(train={"steps": 4})
    train(cfg, random_dataset(), tmp_path, torch.device("cuda"), progress=False)
    loaded = load_generator(tmp_path / "checkpoint.pt", torch.device("cpu"))
    images = generate(loaded.generator, class_labels(3, 2), cfg.model.z_dim)
    assert images.shape == (6, 1, 16, 16) and images.dtype == torch.uint8
    more = tiny_config(train={"steps": 6})
    assert train(more, random_dataset(), tmp_path, torch.device("cuda"), resume=True, progress=False).step == 6


def test_packing_measures_a_trial_and_refuses_one_worker_too_many(tmp_path: Path) -> None:
    from hpsearch.errors import ConfigError
    from hpsearch.search import check_packing, gpu_memory, load_study_config, measure_trial_peak
    from hpsearch.search.packing import CONTEXT_BYTES, largest_fit
    from tests.search.helpers import write_study

    loaded = load_study_config(write_study(tmp_path))
    peak = measure_trial_peak(loaded, tmp_path / "data", "0")
    [gpu] = gpu_memory(["0"])
    assert 0 < peak < gpu.total
    fit = largest_fit(peak + CONTEXT_BYTES, gpu.free)
    check_packing(fit, peak, [gpu])
    with pytest.raises(ConfigError, match=f"holds {fit}"):
        check_packing(fit + 1, peak, [gpu])


def test_adam_is_fused_on_cuda_and_stays_so_after_resuming_a_cpu_checkpoint(tmp_path: Path) -> None:
    from hpsearch.training import build_state

    cfg = tiny_config(train={"steps": 2})
    state = build_state(cfg, random_dataset(), torch.device("cuda"))
    assert all(g["fused"] for opt in (state.opt_g, state.opt_d) for g in opt.param_groups)
    train(cfg, random_dataset(), tmp_path, torch.device("cpu"), progress=False)  # saved with fused off
    resumed = train(tiny_config(train={"steps": 3}), random_dataset(), tmp_path, torch.device("cuda"),
                    resume=True, progress=False)
    assert resumed.step == 3 and all(g["fused"] for g in resumed.opt_g.param_groups)


@pytest.mark.parametrize("first,second", [("cpu", "cuda"), ("cuda", "cpu"), ("cuda:0", "cuda:1")])
def test_a_run_resumes_on_another_device(tmp_path: Path, first: str, second: str) -> None:
    if "cuda:1" in (first, second) and torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs (with one, cpu<->cuda above covers the device change)")
    train(tiny_config(train={"steps": 3}), random_dataset(), tmp_path, torch.device(first), progress=False)
    state = train(tiny_config(train={"steps": 6}), random_dataset(), tmp_path, torch.device(second),
                  resume=True, progress=False)
    assert state.step == 6 and next(state.generator.parameters()).device == torch.device(second)
    assert all(torch.isfinite(p).all() for p in state.generator.parameters())


def test_evaluation_on_the_gpu_agrees_with_the_cpu_on_the_same_images(tmp_path: Path) -> None:
    from hpsearch.config import DataConfig
    from hpsearch.data import load_dataset
    from hpsearch.metrics import Evaluator

    dataset = load_dataset(DataConfig(name="digits", image_size=16), tmp_path)
    cfg = tiny_config(metrics={"samples": 200, "classifier_steps": 200, "real_samples": 1797, "msssim_pairs": 5})
    images, labels = dataset.images[:400], dataset.labels[:400]
    on_cpu = Evaluator(cfg, dataset, torch.device("cpu"), tmp_path / "cache").evaluate(images, labels)
    gpu = Evaluator(cfg, dataset, torch.device("cuda"), tmp_path / "cache")  # the classifier cached by the CPU run
    on_gpu = gpu.evaluate(images.cuda(), labels.cuda())
    # cuDNN's TF32 convolutions round differently from the CPU's fp32 ones: features agree to ~1e-3.
    for key in ("fid", "class_fid"):
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=0.02, abs=0.02), key
    assert abs(on_gpu["cond_acc"] - on_cpu["cond_acc"]) <= 2 / 400


def test_run_pins_each_worker_to_its_gpu_through_cuda_visible_devices(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import optuna

    from hpsearch.search import read_trial
    from tests.search.helpers import ROOT, write_study

    path = write_study(tmp_path, stop={"n_trials": 2}, enqueue=[])
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    run = subprocess.run([sys.executable, "-m", "hpsearch.cli", "run", str(path), "--gpus", "0", "--per-gpu", "2",
                          "--data-dir", str(tmp_path / "data")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    devices = {read_trial(t).device for t in trials}
    assert len(trials) >= 2 and all(d is not None and "GPU 0" in d for d in devices), devices
