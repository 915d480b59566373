"""The evaluation callback: one generated batch → FID, class-averaged FID, accuracy, MS-SSIM, collapse."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpsearch.config import RunConfig
from hpsearch.data import ImageDataset
from hpsearch.errors import CheckpointError, ConfigError
from hpsearch.generation import class_labels, generate
from hpsearch.io import atomic_write_text
from hpsearch.metrics.domain import LoadedClassifier, load_or_train
from hpsearch.metrics.fid import FeatureFID, ReferenceStats, load_reference, save_reference
from hpsearch.metrics.inception import INCEPTION_HOW, InceptionFeatures
from hpsearch.metrics.msssim import class_msssim

_logger = logging.getLogger(__name__)
_CHUNK = 500
REAL_PAIRS = 500  # same-class pairs per class of the real MS-SSIM (computed once per dataset, cached)


class Evaluator:
    """Measures a generator the way section III-A of the conditioning study monitors it.

    Everything expensive happens once, at the first evaluation: the domain classifier is
    loaded (or trained once per dataset and cached) and the real reference statistics are
    loaded (or computed once per dataset × extractor × sample count and cached), and so is
    the real images' within-class MS-SSIM. Each call then generates `metrics.samples` images,
    split evenly over the classes, with a fixed seed, and computes every metric from that one
    batch. `collapse` is true when the generated within-class MS-SSIM exceeds the real one by
    more than `metrics.collapse_margin`: the samples of a class are far more alike than the
    class's real images (mode collapse), whatever the FID says.

    Args:
        cfg: the run config (its `metrics` section, seed and latent size).
        dataset: the real training images.
        device: the training device; all computation stays there.
        cache_dir: where the classifier and reference statistics are cached and shared.
    """

    def __init__(self, cfg: RunConfig, dataset: ImageDataset, device: torch.device, cache_dir: Path) -> None:
        check_metrics(cfg, dataset)
        self.cfg, self.dataset, self.device, self.cache_dir = cfg, dataset, device, cache_dir
        self.per_class = cfg.metrics.samples // dataset.num_classes
        self.classifier: LoadedClassifier | None = None
        self.extractor: nn.Module | None = None
        self.fid: FeatureFID | None = None
        self.reference: ReferenceStats | None = None
        self.real_msssim = math.nan

    def setup(self) -> None:
        """Load or build the classifier, the feature extractor and the reference statistics."""
        if self.reference is not None:
            return
        m = self.cfg.metrics
        self.classifier = load_or_train(self.dataset, self.cache_dir, self.device, m.classifier_steps)
        if m.features == "inception":
            self.extractor = InceptionFeatures(m.inception_weights).to(self.device)
            extractor_id = "inception-" + (Path(m.inception_weights).name if m.inception_weights else "default")
        else:
            self.extractor = self.classifier.model
            extractor_id = f"domain-{self.classifier.fingerprint}"
        self.fid = FeatureFID(int(self.extractor.num_features), self.device)
        self.reference = self._reference(extractor_id)
        self.real_msssim = self._real_msssim()

    def __call__(self, step: int, generator: nn.Module, record: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Evaluate `generator` (the training loop's evaluation callback)."""
        return self.measure(generator, self.cfg.train.seed)

    def measure(self, generator: nn.Module, seed: int) -> dict[str, float]:
        """The metrics of `metrics.samples` images drawn with `seed`, and the time they took (`eval_s`)."""
        start = time.perf_counter()
        labels = class_labels(self.dataset.num_classes, self.per_class, self.device)
        images = generate(generator, labels, self.cfg.model.z_dim, seed=seed)
        result = self.evaluate(images, labels)
        result["eval_s"] = time.perf_counter() - start
        return result

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Metrics of uint8 images (N, C, H, W) that were generated for `labels` (N,)."""
        self.setup()
        assert self.fid is not None and self.reference is not None and self.classifier is not None
        features = self._features(images)
        class_fids = [self.fid.distance(self.reference.per_class[c], features[labels == c])
                      for c in range(self.dataset.num_classes)]
        with torch.no_grad():
            predicted = torch.cat([self.classifier.model.logits(x).argmax(1) for x in images.split(_CHUNK)])
        msssim = class_msssim(images, labels, self.cfg.metrics.msssim_pairs, seed=self.cfg.train.seed)
        return {
            "fid": self.fid.distance(self.reference.overall, features),
            "class_fid": sum(class_fids) / len(class_fids),
            "cond_acc": float((predicted == labels).float().mean()),
            "msssim": msssim,
            "msssim_real": self.real_msssim,
            "collapse": msssim > self.real_msssim + self.cfg.metrics.collapse_margin,
        }

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        assert self.extractor is not None
        with torch.no_grad():
            return torch.cat([self.extractor(x.to(self.device)) for x in images.split(_CHUNK)])

    def _reference(self, extractor_id: str) -> ReferenceStats:
        pick = reference_pick(self.dataset, self.cfg.metrics.real_samples)
        path = self.cache_dir / "reference" / f"{self.dataset.fingerprint()}-{extractor_id}-n{len(pick)}.pt"
        if path.is_file():
            try:
                return load_reference(path, self.device)
            except (CheckpointError, KeyError, TypeError, ValueError) as exc:  # a cache: rebuild it
                _logger.warning("reference statistics %s unreadable (%s); computing them again", path, exc)
        assert self.fid is not None
        features = self._features(self.dataset.images[pick])
        stats = self.fid.reference(features, self.dataset.labels[pick].to(self.device), self.dataset.num_classes)
        save_reference(path, stats)
        _logger.info("reference statistics of %d real images cached in %s", len(pick), path)
        return stats


    def _real_msssim(self) -> float:
        """The real images' within-class MS-SSIM (REAL_PAIRS pairs per class; cached per dataset)."""
        pick = reference_pick(self.dataset, self.cfg.metrics.real_samples)
        path = self.cache_dir / "reference" / f"{self.dataset.fingerprint()}-msssim-n{len(pick)}-p{REAL_PAIRS}.json"
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8"))["msssim"]
                if isinstance(value, float) and 0.0 <= value <= 1.0:
                    return value
                raise ValueError(f"not an MS-SSIM: {value!r}")
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a cache: rebuild it
                _logger.warning("real MS-SSIM %s unreadable (%s); computing it again", path, exc)
        value = class_msssim(self.dataset.images[pick].to(self.device), self.dataset.labels[pick].to(self.device),
                             REAL_PAIRS, seed=0)
        atomic_write_text(path, json.dumps({"msssim": value, "pairs_per_class": REAL_PAIRS, "images": len(pick)}))
        return value


def reference_pick(dataset: ImageDataset, real_samples: int) -> torch.Tensor:
    """Indices of the real images the reference statistics use: a fixed random subset."""
    n = min(real_samples, len(dataset))
    return torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]


def check_metrics(cfg: RunConfig, dataset: ImageDataset) -> None:
    """Everything about the metrics that the config and the data decide, checked before any training.

    Otherwise these surface at the first evaluation, `eval_every` steps (hours on CIFAR) into a run.

    Raises:
        ConfigError: naming the metrics key, the value and what is needed.
    """
    m, k = cfg.metrics, dataset.num_classes
    if m.samples // k < 2:
        raise ConfigError(f"metrics.samples: needs at least 2 per class ({2 * k} for {k} classes); got {m.samples}")
    check_features(cfg)
    counts = torch.bincount(dataset.labels[reference_pick(dataset, m.real_samples)], minlength=k)
    too_few = [c for c in range(k) if counts[c] < 2]
    if too_few:
        raise ConfigError(f"metrics.real_samples: classes {too_few[:10]} have fewer than 2 real images among the "
                          f"{int(counts.sum())} used; raise metrics.real_samples (got {m.real_samples})")


def check_features(cfg: RunConfig) -> None:
    """The FID features can be had: for `inception`, torch-fidelity and the named weights file.

    Needs no data, so callers run it before loading (and caching) a dataset.

    Raises:
        ConfigError: naming the metrics key and how to get what is missing.
    """
    m = cfg.metrics
    if m.features == "inception":
        if importlib.util.find_spec("torch_fidelity") is None:
            raise ConfigError(f"metrics.features inception: torch-fidelity is not installed; {INCEPTION_HOW}")
        if m.inception_weights is not None and not Path(m.inception_weights).is_file():
            raise ConfigError(f"metrics.inception_weights: {m.inception_weights} not found; {INCEPTION_HOW}")
