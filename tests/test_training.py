"""The loop: exact resume, divergence detection, logs, the device batch sampler."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hpsearch.checkpoint import load_checkpoint
from hpsearch.data import DeviceBatchSampler, ImageDataset
from hpsearch.errors import CheckpointError, TrainingDiverged
from hpsearch.training import EMA, check_same_run, train
from tests.conftest import random_dataset, tiny_config

CPU = torch.device("cpu")
# Exercise every piece of state a resume must restore: EMA, n_dis > 1, flips, the GP's RNG.
RESUME_TRAIN = {"n_dis": 2, "ema": True, "loss": "wgan_gp", "log_every": 1, "checkpoint_every": 3, "eval_every": 100}


def _state_tensors(path: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(path)
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, obj: object) -> None:
        if isinstance(obj, torch.Tensor):
            flat[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, list | tuple):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)

    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d", "rng"):
        walk(key, payload[key])
    return flat


# Every random draw of the augmentations comes from the run's RNG: classic ops on the real batch,
# DiffAugment on everything D sees (with WGAN-GP: its interpolates too), a per-class subset.
AUGMENTED = {"augment": {"flip": 0.5, "rotate": 20.0, "shear": 10.0, "translate": 0.1, "brightness": 0.2,
                         "contrast": 0.2, "color_p": 0.8}, "per_class": 5}


@pytest.mark.parametrize(("d_cond", "augmented"), [("projection", False), ("acgan", False), ("projection", True)])
def test_resume_on_cpu_is_bit_identical(tmp_path: Path, d_cond: str, augmented: bool) -> None:
    dataset = random_dataset()
    model = {"d_cond": d_cond, "g_cond": "cbn_linear", "g_spectral_norm": True}
    data = {"hflip": True, **(AUGMENTED if augmented else {})}
    train_cfg = {**RESUME_TRAIN, "diffaug": "color,translation,cutout" if augmented else ""}
    cfg6 = tiny_config(model=model, data=data, train={**train_cfg, "steps": 6})
    cfg3 = tiny_config(model=model, data=data, train={**train_cfg, "steps": 3})
    train(cfg6, dataset, tmp_path / "straight", CPU, progress=False)
    train(cfg3, dataset, tmp_path / "split", CPU, progress=False)
    train(cfg6, dataset, tmp_path / "split", CPU, resume=True, progress=False)

    a, b = _state_tensors(tmp_path / "straight" / "checkpoint.pt"), _state_tensors(tmp_path / "split" / "checkpoint.pt")
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
    log_a = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    log_b = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    # The losses match; the 3-step run also evaluated at its last step (grad norms in that line).
    keep = ("step", "loss_d", "loss_g")
    strip = [{k: json.loads(line)[k] for k in keep} for line in log_a]
    assert strip == [{k: json.loads(line)[k] for k in keep} for line in log_b]
    assert [json.loads(line)["step"] for line in log_b] == [1, 2, 3, 4, 5, 6]


def test_resume_drops_log_lines_past_the_checkpoint(tmp_path: Path) -> None:
    dataset = random_dataset()
    cfg = tiny_config(train={"steps": 5, "log_every": 1, "checkpoint_every": 3, "eval_every": 100})
    train(cfg, dataset, tmp_path, CPU, progress=False)  # checkpoint at 5 overwrites 3
    # Simulate a crash after step 3's checkpoint: go back to a 3-step checkpoint with a 5-step log.
    cfg3 = tiny_config(train={"steps": 3, "log_every": 1, "checkpoint_every": 3, "eval_every": 100})
    train(cfg3, dataset, tmp_path / "b", CPU, progress=False)
    (tmp_path / "b" / "metrics.jsonl").write_text((tmp_path / "metrics.jsonl").read_text())
    train(cfg, dataset, tmp_path / "b", CPU, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    dataset = random_dataset()
    train(tiny_config(), dataset, tmp_path, CPU, progress=False)
    other = tiny_config(model={"d_cond": "concat"}, train={"steps": 8})
    with pytest.raises(CheckpointError, match=r"cannot resume: the config differs in model.d_cond"):
        train(other, dataset, tmp_path, CPU, resume=True, progress=False)


def test_nan_loss_raises_training_diverged_naming_step_and_loss(tmp_path: Path) -> None:
    dataset = random_dataset()
    cfg = tiny_config(train={"steps": 10, "ema": False, "log_every": 4, "eval_every": 2, "checkpoint_every": 100})

    def poison(step: int, gen: torch.nn.Module, record: object) -> None:
        if step == 2:
            with torch.no_grad():
                gen.to_rgb.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"training diverged at step 3: loss_d = nan") as info:
        train(cfg, dataset, tmp_path, CPU, on_eval=[poison], progress=False)
    assert info.value.step == 3 and info.value.loss_name == "loss_d"


def test_eval_callbacks_and_metrics_log(tmp_path: Path) -> None:
    dataset = random_dataset()
    cfg = tiny_config(train={"steps": 4, "log_every": 2, "eval_every": 2, "checkpoint_every": 4})
    calls: list[int] = []
    train(cfg, dataset, tmp_path, CPU, on_eval=[lambda s, g, r: calls.append(s) or {"score": float(s)}], progress=False)
    assert calls == [2, 4]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4] and records[1]["score"] == 4.0
    assert {"loss_d", "loss_g", "images_per_s"} <= records[0].keys()
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "checkpoint.pt").is_file()


def test_device_batch_sampler_scales_flips_and_is_seeded() -> None:
    dataset = random_dataset(n=10, size=4)
    dataset.images[:] = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4) * 85  # 0, 85, 170, 255 per row
    gen = torch.Generator().manual_seed(0)
    sampler = DeviceBatchSampler(dataset, 64, CPU, gen, hflip=True)
    x, y = sampler.sample()
    assert x.shape == (64, 1, 4, 4) and y.shape == (64,) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1
    flipped = x[:, 0, 0, 0] == 1
    assert 10 < int(flipped.sum()) < 54  # about half flipped
    torch.testing.assert_close(x[flipped], x[~flipped][:1].flip(3).expand(int(flipped.sum()), -1, -1, -1))
    again = DeviceBatchSampler(dataset, 64, CPU, torch.Generator().manual_seed(0), hflip=True).sample()
    torch.testing.assert_close(again[0], x)
    torch.testing.assert_close(again[1], y)


def test_ema_warmup_ramps_the_decay_so_early_averages_forget_the_initialization() -> None:
    model = torch.nn.Linear(3, 2)
    warm, cold = EMA(model, 0.999, warmup=True), EMA(model, 0.999, warmup=False)
    assert warm.decay_at(1) == pytest.approx(2 / 11) and warm.decay_at(10**6) == 0.999
    assert [warm.decay_at(s) for s in (1, 10, 100, 1000)] == sorted(warm.decay_at(s) for s in (1, 10, 100, 1000))
    assert cold.decay_at(1) == 0.999
    init = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.fill_(1.0)
    for step in range(1, 251):
        warm.update(model, step)
        cold.update(model, step)
    # 250 steps toward the trained weights: the cold average still holds 0.999**250 = 78% of the init.
    torch.testing.assert_close(cold.model.weight, init * 0.999**250 + (1 - 0.999**250))
    # With the warm-up the init's share is the product of the ramped decays: under 0.1%.
    share = math.prod(warm.decay_at(s) for s in range(1, 251))
    assert share < 1e-3
    torch.testing.assert_close(warm.model.weight, init * share + (1 - share))


def test_resume_from_another_kind_of_device_reseeds_the_run_rng(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the run goes on, re-seeded, and says so."""
    from hpsearch.checkpoint import save_checkpoint

    train(tiny_config(train={"steps": 2}), random_dataset(), tmp_path, torch.device("cpu"), progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", map_location=torch.device("cpu"))
    payload["rng"]["train"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA generator saves
    save_checkpoint(tmp_path / "checkpoint.pt", payload)
    with caplog.at_level("WARNING"):
        state = train(tiny_config(train={"steps": 4}), random_dataset(), tmp_path, torch.device("cpu"),
                      resume=True, progress=False)
    assert state.step == 4 and "re-seeded" in caplog.text
    assert state.rng.initial_seed() == 0 + 1_000_003 * 2


def test_an_optimizer_keeps_this_devices_fused_setting_when_loading_another_ones_state() -> None:
    from hpsearch.training import load_optimizer

    model = torch.nn.Linear(3, 2)
    saved_opt = torch.optim.Adam(model.parameters())  # as saved on a CPU worker: not fused
    model(torch.ones(1, 3)).sum().backward()
    saved_opt.step()
    fused_opt = torch.optim.Adam(model.parameters(), fused=True)  # PyTorch fuses on the CPU too
    load_optimizer(fused_opt, saved_opt.state_dict())
    assert all(group["fused"] for group in fused_opt.param_groups)
    fused_opt.step()  # fused Adam accepts the loaded step counts
    assert int(fused_opt.state[model.weight]["step"]) == 2


def test_a_checkpoint_stored_before_a_config_field_existed_still_belongs_to_its_run(
        tiny_dataset: ImageDataset) -> None:
    """A field added by a release, at its default, is what an older run did: its checkpoint resumes (the
    stored study base is read the same way); a real difference is still refused."""

    cfg = tiny_config()
    older = cfg.to_dict()
    del older["data"]["augment"], older["train"]["diffaug"]
    check_same_run({"config": older, "class_names": tiny_dataset.class_names}, cfg, tiny_dataset, Path("c.pt"))
    other = cfg.to_dict()
    other["model"]["z_dim"] = 9
    with pytest.raises(CheckpointError, match=r"config differs in model.z_dim"):
        check_same_run({"config": other}, cfg, tiny_dataset, Path("c.pt"))
