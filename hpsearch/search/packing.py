"""Packing workers onto GPUs: one trial's peak memory times K against each GPU's free memory, before any starts.

`hpsearch run --gpus 0 --per-gpu K` starts K workers on one GPU. Too many and they fail one
by one with out-of-memory errors, trials and all, minutes into the search. So before any
worker starts, a few training steps and one evaluation-sized generation of the study's base
configuration are measured in a child process (so this process holds no CUDA context while
the workers run), each worker is charged that peak plus a stated CUDA context, and K must
fit into 90% of the free memory of every GPU asked for. The measured figure is that of the
base config: a space that searches wider models can need more, which the message says.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

from hpsearch.errors import ConfigError
from hpsearch.search.study_file import LoadedStudy

CONTEXT_BYTES = 600 * 2**20  # per worker: the CUDA context and the cuDNN/cuBLAS workspaces (an estimate)
HEADROOM = 0.9  # share of the free memory the workers may plan to use (fragmentation, bursts)
MEASURE_STEPS = 3


@dataclass(frozen=True)
class GpuMemory:
    """A GPU's id (as given to --gpus) and its free and total memory in bytes."""

    gpu: str
    free: int
    total: int


def largest_fit(per_worker: int, free: int, headroom: float = HEADROOM) -> int:
    """How many workers of `per_worker` bytes fit into `headroom` of `free` bytes."""
    return max(0, math.floor(free * headroom / per_worker))


def check_packing(per_gpu: int, trial_peak: int, gpus: list[GpuMemory]) -> None:
    """Refuse `per_gpu` workers on any GPU where they do not fit, naming the largest number that does.

    Raises:
        ConfigError: naming the GPU, its free memory, the per-worker figure and how it was made.
    """
    per_worker = trial_peak + CONTEXT_BYTES
    for gpu in gpus:
        fit = largest_fit(per_worker, gpu.free)
        if per_gpu > fit:
            advice = f"use --per-gpu {fit} or less" if fit else "free memory on it first (nvidia-smi)"
            raise ConfigError(
                f"--per-gpu {per_gpu}: GPU {gpu.gpu} has {_gib(gpu.free)} free of {_gib(gpu.total)}; one worker needs "
                f"about {_gib(per_worker)} (the base config's measured training peak {_gib(trial_peak)} + "
                f"{_gib(CONTEXT_BYTES)} CUDA context), and {int(HEADROOM * 100)}% of the free memory holds {fit}: "
                f"{advice} (wider models drawn by the space need more)")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def gpu_memory(gpus: list[str]) -> list[GpuMemory]:
    """Free and total memory of each GPU id (a physical id, or one listed in $CUDA_VISIBLE_DEVICES)."""
    import torch

    from hpsearch.devices import visible_gpus

    visible = visible_gpus()
    out = []
    for gpu in gpus:
        index = visible.index(gpu) if gpu in visible else int(gpu)
        free, total = torch.cuda.mem_get_info(index)
        out.append(GpuMemory(gpu, int(free), int(total)))
    return out


def measure_trial_peak(loaded: LoadedStudy, data_dir: Path, gpu: str) -> int:
    """Peak CUDA memory of the base config's training steps and one evaluation-sized generation, in a child process."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        try:
            return int(pool.apply(_measure, (str(loaded.path), loaded.cfg.storage, str(data_dir), gpu)))
        except RuntimeError as exc:  # torch.OutOfMemoryError is one
            if "out of memory" not in str(exc).lower():
                raise
            raise ConfigError(f"--gpus {gpu}: one trial of the base config does not fit in the GPU's free memory "
                              f"({str(exc).splitlines()[0]})") from exc


def _measure(study_path: str, storage: str | None, data_dir: str, gpu: str) -> int:
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch touches CUDA in this fresh process
    import torch

    from hpsearch.data import load_dataset
    from hpsearch.generation import GENERATION_BATCH, class_labels, generate
    from hpsearch.search.study_file import load_study_config
    from hpsearch.training import batches_and_objective, build_state, train_step

    cfg = load_study_config(study_path, storage).base_config
    device = torch.device("cuda")
    dataset = load_dataset(cfg.data, Path(data_dir))
    torch.cuda.reset_peak_memory_stats(device)
    state = build_state(cfg, dataset, device)
    sampler, objective = batches_and_objective(cfg, dataset, state, device)
    for _ in range(MEASURE_STEPS):
        train_step(state, objective, sampler.sample, cfg, dataset.num_classes)
    per_class = max(1, min(cfg.metrics.samples, GENERATION_BATCH) // dataset.num_classes)  # one generation batch
    labels = class_labels(dataset.num_classes, per_class, device)
    generate(state.generator, labels, cfg.model.z_dim)
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))
