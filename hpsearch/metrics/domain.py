"""The offline FID feature extractor: a small classifier trained once per dataset and cached.

Inception weights cannot be downloaded everywhere and Inception is slow on 16×16 digits;
a classifier trained on the real training images gives features that separate what
matters in this domain, and its predictions give the conditional accuracy of generated
samples. FIDs on these features are only comparable with each other.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hpsearch.checkpoint import load_checkpoint, save_checkpoint
from hpsearch.data import ImageDataset
from hpsearch.errors import CheckpointError

_logger = logging.getLogger(__name__)

ARCH_VERSION = 2  # bump when DomainClassifier changes: old caches are then ignored
FEATURES = 64
_BATCH = 128
_SEED = 0
_HOLDOUT = 0.1


class DomainClassifier(nn.Module):
    """Three conv blocks → global average pool → 64-d ReLU features → class logits.

    Takes uint8 images (B, C, H, W) like the FID metric does. The first block keeps 16×16
    inputs at full resolution and halves larger ones, so the cost stays small at 32 and 64.
    """

    def __init__(self, channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.num_features = FEATURES  # read by torchmetrics' FID
        widths = [channels, 32, 64, 128]
        strides = [1 if image_size <= 16 else 2, 2, 2]
        layers: list[nn.Module] = []
        for c_in, c_out, stride in zip(widths[:-1], widths[1:], strides, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.penultimate = nn.Linear(128, FEATURES)
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) → penultimate features (B, 64)."""
        x = images.float() / 127.5 - 1.0
        return F.relu(self.penultimate(self.body(x).mean(dim=(2, 3))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The FID feature extractor call: uint8 images → features."""
        return self.features(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images → class logits (B, K)."""
        return self.head(self.features(images))


@dataclass
class LoadedClassifier:
    """A ready classifier (eval mode, on the device) and what is known about it."""

    model: DomainClassifier
    test_accuracy: float
    fingerprint: str
    trained: bool  # False when it came from the cache


def classifier_path(dataset: ImageDataset, cache_dir: Path, steps: int) -> Path:
    """Cache file of the classifier for this exact dataset, architecture and budget."""
    return cache_dir / "domain" / f"{dataset.fingerprint()}-v{ARCH_VERSION}-s{steps}.pt"


def load_or_train(dataset: ImageDataset, cache_dir: Path, device: torch.device, steps: int) -> LoadedClassifier:
    """The dataset's domain classifier: from the cache, or trained once and cached.

    A file lock makes concurrent workers wait for the one that trains instead of
    training again; a changed dataset has a different fingerprint and a new cache file.
    """
    path = classifier_path(dataset, cache_dir, steps)
    with _locked(path):
        payload = _cached(path, device)
        trained = payload is None
        if payload is None:
            model, accuracy = _train(dataset, device, steps)
            save_checkpoint(path, {"state": model.state_dict(), "test_accuracy": accuracy,
                                   "shape": [dataset.channels, dataset.num_classes, dataset.image_size]})
            _logger.info("domain classifier: held-out accuracy %.2f%%, cached in %s", 100 * accuracy, path)
            payload = load_checkpoint(path, map_location=device)
    model = DomainClassifier(*payload["shape"]).to(device)
    model.load_state_dict(payload["state"])
    return LoadedClassifier(model.eval().requires_grad_(False), float(payload["test_accuracy"]), path.stem, trained)


def _cached(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The cached classifier, or None when there is none or it is damaged (a cache is rebuilt, not fatal)."""
    if not path.is_file():
        return None
    try:
        payload = load_checkpoint(path, map_location=device)
        if {"state", "test_accuracy", "shape"} <= payload.keys():
            return payload
    except CheckpointError as exc:
        _logger.warning("%s; training the domain classifier again", exc)
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _train(dataset: ImageDataset, device: torch.device, steps: int) -> tuple[DomainClassifier, float]:
    """Train on 90% of the images (fixed seed); return the model and its accuracy on the other 10%."""
    gen = torch.Generator().manual_seed(_SEED)
    torch.manual_seed(_SEED)
    order = torch.randperm(len(dataset), generator=gen)
    n_test = max(1, int(len(dataset) * _HOLDOUT))
    test_idx, train_idx = order[:n_test], order[n_test:]
    images, labels = dataset.images.to(device), dataset.labels.to(device)
    model = DomainClassifier(dataset.channels, dataset.num_classes, dataset.image_size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in tqdm(range(steps), desc="domain classifier", unit="step", leave=False):
        batch = train_idx[torch.randint(len(train_idx), (_BATCH,), generator=gen)].to(device)
        x = images[batch]
        shift = torch.randint(-1, 2, (2,), generator=gen).tolist()  # ±1 px shifts: cheap augmentation
        x = torch.roll(x, shifts=shift, dims=(2, 3))
        loss = F.cross_entropy(model.logits(x), labels[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        test = test_idx.to(device)
        predictions = torch.cat([model.logits(images[chunk]).argmax(1) for chunk in test.split(1024)])
        accuracy = float((predictions == labels[test]).float().mean())
    return model, accuracy
