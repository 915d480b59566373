"""The training loop: D and G steps, logging, evaluation callbacks, exact checkpoints.

It takes a validated RunConfig and a dataset and knows nothing of Optuna: a search
plugs in through `on_eval` callbacks (which may raise to stop a trial).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from hpsearch.augment import ClassicAugment, DiffAugment
from hpsearch.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from hpsearch.config import RunConfig, dump_config, from_dict
from hpsearch.data import DeviceBatchSampler, ImageDataset
from hpsearch.devices import check_compile
from hpsearch.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted, reason
from hpsearch.generation import check_same_classes
from hpsearch.io import atomic_write_text, naming_errors
from hpsearch.losses import GANObjective
from hpsearch.metrics.grad_norms import GradNormTracker
from hpsearch.models import build_discriminator, build_generator
from hpsearch.seeds import derived_seed

_logger = logging.getLogger(__name__)

METRICS_LOG = "metrics.jsonl"
CONFIG_NAME = "config.yaml"
# Changing these on resume does not change the trajectory, so a resumed run may differ in them
# (`compile` changes only the rounding of floating-point sums, as another GPU would).
RESUMABLE_CHANGES = {"steps", "log_every", "eval_every", "checkpoint_every", "grid_per_class", "compile"}
RESUMABLE_SECTIONS = {"metrics"}  # what is measured does not change the trajectory

# Called as cb(step, sampling_generator, record): `record` is the log line so far (losses,
# gradient norms, results of earlier callbacks); what a callback returns is added to it.
EvalCallback = Callable[[int, nn.Module, Mapping[str, Any]], "Mapping[str, float] | None"]


class EMA:
    """Exponential moving average of the generator's parameters (buffers are copied).

    Sampling from the average is smoother and usually scores a better FID than the
    raw generator; it costs one lerp per parameter per step.

    With `warmup`, the decay at step t is min(decay, (1 + t) / (10 + t)), so the average spans
    about the last ninth of training until that reaches `decay`. Without it, a decay of 0.999
    still holds 78% of the random initial weights at step 250: early evaluations then score the
    initialization, not the design, and a pruner ranking trials on them ranks noise.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup

    def decay_at(self, step: int) -> float:
        """The decay applied by the update that completes `step` (counted from 1)."""
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards `model` after training step `step` (counted from 1)."""
        # One fused kernel per dtype/device group instead of one per parameter.
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1.0 - self.decay_at(step))
        buffers = list(self.model.buffers())
        if buffers:  # a generator without normalization has none, and _foreach_copy_ refuses an empty list
            torch._foreach_copy_(buffers, list(model.buffers()))


class LossTracker:
    """Sums losses on the device and remembers the first non-finite one without syncing.

    Reading a loss with `.item()` every step would stall a GPU; this only syncs in
    `flush`, at log, evaluation and checkpoint steps.
    """

    def __init__(self, device: torch.device, step: int) -> None:
        self.sums = torch.zeros(2, device=device, dtype=torch.float64)
        self.first_bad = torch.full((3,), -1.0, device=device, dtype=torch.float64)  # step, which, value
        self.step = torch.tensor(float(step), device=device, dtype=torch.float64)  # counted on the device
        self.count = 0

    def add(self, loss_d: torch.Tensor, loss_g: torch.Tensor) -> None:
        """Record one step's losses (no host-device synchronization)."""
        self.step += 1
        losses = torch.stack([loss_d.detach(), loss_g.detach()]).double()
        bad = ~torch.isfinite(losses)
        which = bad.double().argmax()
        record = torch.stack([self.step, which, losses[which]])
        self.first_bad = torch.where(bad.any() & (self.first_bad[0] < 0), record, self.first_bad)
        self.sums += torch.nan_to_num(losses)
        self.count += 1

    def flush(self) -> dict[str, float]:
        """Mean losses since the last flush; raises TrainingDiverged on a non-finite loss."""
        step, which, value = self.first_bad.tolist()
        if step >= 0:
            raise TrainingDiverged(int(step), ("loss_d", "loss_g")[int(which)], value)
        means = (self.sums / max(self.count, 1)).tolist()
        self.sums.zero_()
        self.count = 0
        return {"loss_d": means[0], "loss_g": means[1]}


@dataclass
class TrainState:
    """Everything a checkpoint holds: models, optimizers, EMA, step and RNG."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None
    rng: torch.Generator
    step: int = 0

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.generator

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema is not None else None,
            "rng": {"train": self.rng.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        """Restore a checkpoint, also one saved on another device (a trial retried on another worker).

        On the same kind of device the run continues bit-identically. From CPU to CUDA or back, the
        run's generator state does not transfer (the two generators keep different states), so the
        run's RNG is re-seeded from its seed and the step, with a warning: the run continues
        correctly but not bit-identically.
        """
        self.step = int(payload["step"])
        self.generator.load_state_dict(payload["generator"])
        self.discriminator.load_state_dict(payload["discriminator"])
        load_optimizer(self.opt_g, payload["opt_g"])
        load_optimizer(self.opt_d, payload["opt_d"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.model.load_state_dict(payload["ema"])
        try:
            self.rng.set_state(payload["rng"]["train"])
        except RuntimeError:  # a CPU generator's state on a CUDA generator, or the reverse
            self.rng.manual_seed(derived_seed(self.rng.initial_seed(), self.step, "reseed"))
            _logger.warning("resuming at step %d on %s from a checkpoint saved on another kind of device: the "
                            "run's random streams are re-seeded (the run continues, not bit-identically)",
                            self.step, self.rng.device)
        torch.set_rng_state(payload["rng"]["torch"])
        cuda_states = list(payload["rng"]["cuda"])[:torch.cuda.device_count()] if torch.cuda.is_available() else []
        for index, cuda_state in enumerate(cuda_states):  # a machine with fewer GPUs than the saving one
            torch.cuda.set_rng_state(cuda_state, index)


def load_optimizer(opt: torch.optim.Optimizer, saved: Mapping[str, Any]) -> None:
    """Load an optimizer's state, keeping this device's fused setting rather than the saving one's.

    Fused Adam (CUDA) keeps its step counts on the parameters' device; a state saved without it keeps
    them on the CPU, so they are moved when this optimizer is fused.
    """
    fused = [group.get("fused") for group in opt.param_groups]
    opt.load_state_dict(dict(saved))
    for group, flag in zip(opt.param_groups, fused, strict=True):
        group["fused"] = flag
        if flag:
            for param in group["params"]:
                state = opt.state.get(param, {})
                if "step" in state:
                    state["step"] = state["step"].to(device=param.device, dtype=torch.float32)


def batches_and_objective(cfg: RunConfig, dataset: ImageDataset, state: TrainState,
                          device: torch.device) -> tuple[DeviceBatchSampler, GANObjective]:
    """The real batches (per-class subset, flips, classic augmentation) and the losses (with DiffAugment) of `cfg`.

    Both draw from the run's RNG (`state.rng`), so they resume exactly with it.
    """
    classic = ClassicAugment(cfg.data.augment, state.rng)
    sampler = DeviceBatchSampler(dataset.limit_per_class(cfg.data.per_class), cfg.train.batch_size, device,
                                 state.rng, cfg.data.hflip, channels_last=device.type == "cuda" and
                                 cfg.train.channels_last, augment=classic if classic.enabled else None)
    diffaug = DiffAugment(cfg.train.diffaug, state.rng) if cfg.train.diffaug else None
    return sampler, GANObjective(cfg.train, diffaug)


def build_state(cfg: RunConfig, dataset: ImageDataset, device: torch.device) -> TrainState:
    """Seeded models, Adam optimizers (TTUR: separate lr and betas), EMA and the RNG."""
    torch.manual_seed(cfg.train.seed)
    t = cfg.train
    shape = (cfg.data.image_size, dataset.channels, dataset.num_classes)
    gen = build_generator(cfg.model, *shape).to(device)
    disc = build_discriminator(cfg.model, *shape).to(device)
    if device.type == "cuda" and t.channels_last:
        gen = gen.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        disc = disc.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # Fused Adam on CUDA: one kernel for all parameters instead of a few per parameter.
    fused = device.type == "cuda"
    opt_g = torch.optim.Adam(gen.parameters(), lr=t.g_lr, betas=(t.g_betas[0], t.g_betas[1]), fused=fused)
    opt_d = torch.optim.Adam(disc.parameters(), lr=t.d_lr, betas=(t.d_betas[0], t.d_betas[1]), fused=fused)
    ema = EMA(gen, t.ema_decay, t.ema_warmup) if t.ema else None  # an eager copy, made before compiling
    if t.compile:
        check_compile(device)
        # Module.compile keeps the state_dict's keys (no `_orig_mod.` prefix): checkpoints are the same.
        gen.compile()
        disc.compile()
    rng = torch.Generator(device=device).manual_seed(t.seed)
    return TrainState(gen, disc, opt_g, opt_d, ema, rng)


def sample_latents(state: TrainState, batch_size: int, z_dim: int,
                   num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise z (B, Z) and uniformly drawn labels (B,) from the run's RNG."""
    device = state.rng.device
    z = torch.randn(batch_size, z_dim, device=device, generator=state.rng)
    y = torch.randint(num_classes, (batch_size,), device=device, generator=state.rng)
    return z, y


def train_step(state: TrainState, objective: GANObjective, batches: Callable[[], tuple[torch.Tensor, torch.Tensor]],
               cfg: RunConfig, num_classes: int,
               grad_norms: GradNormTracker | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One generator step preceded by `n_dis` discriminator steps; returns (loss_d, loss_g).

    When `grad_norms` is given, the gradient norm of D after each D backward and of G
    after the G backward are recorded (on the device, no synchronization).
    """
    gen, disc, t = state.generator, state.discriminator, cfg.train
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if t.amp and state.rng.device.type == "cuda"
                else nullcontext())
    # Discriminator: real batch vs. detached fakes of random labels.
    for _ in range(t.n_dis):
        x, y = batches()
        z, y_fake = sample_latents(state, x.shape[0], cfg.model.z_dim, num_classes)
        with autocast:
            with torch.no_grad():
                fake = gen(z, y_fake)
            loss_d = objective.d_loss(disc, x, y, fake, y_fake)
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if grad_norms is not None:
            grad_norms.record("d", disc)
        state.opt_d.step()
    # Generator: gradients flow through a frozen D.
    z, y_fake = sample_latents(state, t.batch_size, cfg.model.z_dim, num_classes)
    disc.requires_grad_(False)
    with autocast:
        loss_g = objective.g_loss(disc, gen(z, y_fake), y_fake)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if grad_norms is not None:
        grad_norms.record("g", gen)
    state.opt_g.step()
    disc.requires_grad_(True)
    if state.ema is not None:
        state.ema.update(gen, state.step + 1)
    return loss_d, loss_g


def train(cfg: RunConfig, dataset: ImageDataset, out_dir: Path, device: torch.device, *,
          resume: bool = False, on_eval: Sequence[EvalCallback] = (), progress: bool = True,
          stop: Callable[[], bool] | None = None) -> TrainState:
    """Train `cfg` on `dataset`, writing config, metrics log and checkpoints to `out_dir`.

    Args:
        resume: continue from `out_dir/checkpoint.pt` when it exists.
        on_eval: called as `cb(step, sampling_generator, record)` every `eval_every` steps
            and at the end; returned metrics go into the metrics log. A callback may raise
            to stop (a search prunes this way).
        progress: show a progress bar.
        stop: polled after every step; when it returns True the loop writes a checkpoint
            and raises TrainingInterrupted (a worker asked to stop hands its trial back this way).

    Raises:
        TrainingDiverged: a loss became NaN or infinite (the step and loss are named).
        TrainingInterrupted: `stop` asked to stop; the checkpoint is at the step it names.
        CheckpointError: resuming from a checkpoint of a different configuration.
    """
    # Setup: state, data on the device, the objective; resume if asked.
    t = cfg.train
    state = build_state(cfg, dataset, device)
    ckpt_path = out_dir / CHECKPOINT_NAME
    if resume and ckpt_path.is_file():
        _restore(state, cfg, dataset, ckpt_path, device)
        _truncate_log(out_dir / METRICS_LOG, state.step)
        _logger.info("resumed from %s at step %d", ckpt_path, state.step)
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out_dir / CONFIG_NAME)
    sampler, objective = batches_and_objective(cfg, dataset, state, device)
    tracker = LossTracker(device, state.step)
    grad_norms = GradNormTracker(device)
    meta = {"class_names": dataset.class_names, "image_shape": list(dataset.images.shape[1:]),
            "config": cfg.to_dict()}
    bar = tqdm(total=t.steps, initial=state.step, disable=not progress, desc="train", unit="step")
    clock, images_seen = time.perf_counter(), 0

    # The loop: one G step (with its n_dis D steps) per iteration.
    while state.step < t.steps:
        loss_d, loss_g = train_step(state, objective, sampler.sample, cfg, dataset.num_classes, grad_norms)
        state.step += 1
        tracker.add(loss_d, loss_g)
        images_seen += t.batch_size * t.n_dis  # real images consumed
        bar.update(1)
        last = state.step == t.steps
        do_log, do_eval = state.step % t.log_every == 0 or last, state.step % t.eval_every == 0 or last
        stopping = stop is not None and stop()
        do_ckpt = state.step % t.checkpoint_every == 0 or last or stopping
        if not (do_log or do_eval or do_ckpt):
            continue
        # Bookkeeping: divergence check, log line, evaluations, checkpoint.
        record: dict[str, Any] = {"step": state.step, **tracker.flush()}
        elapsed = time.perf_counter() - clock
        record["images_per_s"] = images_seen / elapsed if elapsed > 0 else math.nan
        clock, images_seen = time.perf_counter(), 0
        if do_eval:
            record.update(grad_norms.flush())  # mean and max since the last evaluation
            for callback in on_eval:
                record.update(callback(state.step, state.sampling_generator, record) or {})
        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if isinstance(v, float)})
        _append_log(out_dir / METRICS_LOG, record)
        if do_ckpt:
            save_checkpoint(ckpt_path, {**state.state_dict(), **meta})
        if stopping:
            bar.close()
            raise TrainingInterrupted(state.step, str(ckpt_path))
    bar.close()
    return state


def _restore(state: TrainState, cfg: RunConfig, dataset: ImageDataset, path: Path, device: torch.device) -> None:
    payload = load_checkpoint(path, map_location=device)
    check_same_run(payload, cfg, dataset, path)
    try:
        state.load_state_dict(payload)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:  # RuntimeError: shapes differ
        raise CheckpointError(f"{path}: cannot resume: the checkpoint's state does not fit this run "
                              f"({type(exc).__name__}: {reason(exc, 300)}); delete it to start over") from exc


def check_same_run(payload: Mapping[str, Any], cfg: RunConfig, dataset: ImageDataset, path: Path) -> None:
    """A checkpoint (or best generator) read from a run folder belongs to this run: the same config up to
    what a resume may change, and the same classes.

    Raises:
        CheckpointError: naming the file and what differs.
    """
    stored, new = payload.get("config"), cfg.to_dict()
    try:  # a config stored before a field existed: the field at its default is what that run did
        stored = from_dict(stored, f"{path}: stored config").to_dict()
    except ConfigError:  # a field this release does not know, or not a config at all: compared as it is
        pass
    old = {k: v for k, v in stored.items() if isinstance(v, dict)} if isinstance(stored, dict) else {}
    diffs = [f"{section}.{key}" for section in new for key in new[section]
             if old.get(section, {}).get(key) != new[section][key]
             and not (section == "train" and key in RESUMABLE_CHANGES) and section not in RESUMABLE_SECTIONS]
    if diffs:
        raise CheckpointError(f"{path}: cannot resume: the config differs in {', '.join(diffs)}")
    if "class_names" in payload:
        check_same_classes(list(payload["class_names"]), dataset.class_names, path)


def _append_log(path: Path, record: Mapping[str, Any]) -> None:
    with naming_errors(path), path.open("a") as fh:  # a full disk: the error names the log
        fh.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines after the checkpoint's step, so a resumed run does not log them twice.

    A line that does not parse (a kill in the middle of writing it leaves half a line, or a
    crash leaves zeros) is dropped with a warning: the log is a record, the checkpoint the state.
    """
    if not path.is_file():
        return
    kept, torn = [], 0
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        record = _parse_log_line(line)
        if record is None:
            torn += bool(line.strip())
        elif record["step"] <= step:
            kept.append(line)
    if torn:
        _logger.warning("%s: dropped %d damaged line(s) (an interrupted write)", path, torn)
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def _parse_log_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None
