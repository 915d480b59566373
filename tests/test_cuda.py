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
    from hpsearch.sampling import class_labels, generate, load_generator

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
