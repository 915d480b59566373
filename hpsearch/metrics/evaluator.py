"""The evaluation callback: one generated batch → FID, KID, precision/recall/density/coverage (overall and
class-averaged), conditional accuracy, MS-SSIM, collapse."""

from __future__ import annotations

import dataclasses
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
from hpsearch.metrics.kid import FeatureKID
from hpsearch.metrics.manifold import Manifold, manifold
from hpsearch.metrics.msssim import class_msssim

_logger = logging.getLogger(__name__)
_CHUNK = 500
REAL_PAIRS = 500  # same-class pairs per class of the real MS-SSIM (computed once per dataset, cached)
MANIFOLD_SAMPLES = 10_000  # most samples a side of precision/recall/density/coverage (memory ~ its square)


class Evaluator:
    """Measures a generator the way section III-A of the conditioning study monitors it.

    Everything expensive happens once, at the first evaluation: the domain classifier is
    loaded (or trained once per dataset and cached) and the real reference statistics are
    loaded (or computed once per dataset × extractor × sample count and cached), and so is
    the real images' within-class MS-SSIM. Each call then generates `metrics.samples` images,
    split evenly over the classes, with a fixed seed, and computes every metric from that one
    batch, on one set of features: FID and KID against all the reference images (overall) and
    against each class's (`class_` metrics: the mean over classes); precision, recall, density
    and coverage against as many reference images as there are generated ones (coverage depends
    on that ratio), overall and per class. `collapse` is true when the generated within-class
    MS-SSIM exceeds the real one by more than `metrics.collapse_margin`, or when some class's
    density exceeds its coverage by more than `metrics.collapse_density_ratio`: the samples of a
    class are far more alike than its real images, or pile up on a few of them and miss the rest
    (mode collapse), whatever the FID says; `collapse_reason` then says which.

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
        self.kid: FeatureKID | None = None
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
        self.kid = FeatureKID(int(self.extractor.num_features), m.kid_subsets, m.kid_subset_size)
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
        result = self.evaluate(images, labels, seed)
        result["eval_s"] = time.perf_counter() - start
        return result

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, seed: int | None = None) -> dict[str, Any]:
        """Metrics of uint8 images (N, C, H, W) that were generated for `labels` (N,).

        `seed` (default: the run's) draws the MS-SSIM pairs and the KID subsets.
        """
        self.setup()
        assert self.fid is not None and self.kid is not None and self.reference is not None
        assert self.classifier is not None
        m, ref, seed = self.cfg.metrics, self.reference, self.cfg.train.seed if seed is None else seed
        features = self.features(images)
        overall, per_class = self.overall_manifold(features), self.class_manifolds(features, labels)
        with torch.no_grad():
            predicted = torch.cat([self.classifier.model.logits(x).argmax(1) for x in images.split(_CHUNK)])
        msssim = class_msssim(images, labels, m.msssim_pairs, seed=seed)
        values: dict[str, Any] = {
            "fid": self.fid.distance(ref.overall, features),
            "class_fid": self.class_fid(features, labels),
            "kid": self.kid.distance(ref.features, features, seed),
            "class_kid": self.class_kid(features, labels, seed),
            **{name: getattr(overall, name) for name in MANIFOLD},
            **{f"class_{name}": _mean([getattr(p, name) for p in per_class]) for name in MANIFOLD},
            "class_coverage_min": min(p.coverage for p in per_class),
            "class_density_coverage_max": max(density_over_coverage(p) for p in per_class),
            "cond_acc": float((predicted == labels).float().mean()),
            "msssim": msssim,
            "msssim_real": self.real_msssim,
        }
        reason = collapse_reason(values, per_class, m.collapse_margin, m.collapse_density_ratio)
        values["collapse"] = bool(reason)
        if reason:
            values["collapse_reason"] = reason
        return values

    def class_fid(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        """FID of each class's features against its reference moments, averaged over the classes."""
        assert self.fid is not None and self.reference is not None
        return _mean([self.fid.distance(self.reference.per_class[c], features[labels == c])
                      for c in range(self.dataset.num_classes)])

    def class_kid(self, features: torch.Tensor, labels: torch.Tensor, seed: int) -> float:
        """KID of each class's features against its reference features, averaged over the classes."""
        assert self.kid is not None and self.reference is not None
        return _mean([self.kid.distance(self.reference.of_class(c), features[labels == c], seed)
                      for c in range(self.dataset.num_classes)])

    def overall_manifold(self, features: torch.Tensor) -> Manifold:
        """Precision, recall, density, coverage of all the features against as many reference features
        (coverage depends on the ratio), at most MANIFOLD_SAMPLES a side (the distance matrices grow with
        its square: 10,000 is 0.4 GB each)."""
        assert self.reference is not None
        fake = evenly(features, MANIFOLD_SAMPLES)
        return manifold(self.reference.features[:len(fake)], fake, self.cfg.metrics.prdc_k)

    def class_manifolds(self, features: torch.Tensor, labels: torch.Tensor) -> list[Manifold]:
        """The same of each class's features against as many of its reference features."""
        assert self.reference is not None
        found = []
        for c in range(self.dataset.num_classes):
            fake = evenly(features[labels == c], MANIFOLD_SAMPLES)
            found.append(manifold(self.reference.of_class(c)[:len(fake)], fake, self.cfg.metrics.prdc_k))
        return found

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The extractor's features (N, F) of uint8 images (N, C, H, W), in chunks, on the device."""
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
        features = self.features(self.dataset.images[pick])
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


# The metrics a study may minimize (config.ObjectiveName), with what they are; all lower-is-better.
OBJECTIVES: dict[str, str] = {
    "class_fid": "FID of each class's samples against its real images, averaged (the conditioning study's)",
    "fid": "FID of all samples against all real images",
    "class_kid": "KID (unbiased squared MMD, cubic kernel) of each class's samples against its real images, averaged",
    "kid": "KID of all samples against all real images",
}
MANIFOLD = tuple(f.name for f in dataclasses.fields(Manifold))  # precision, recall, density, coverage


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def density_over_coverage(m: Manifold) -> float:
    """How much more the samples crowd the real neighbourhoods they reach than they spread over them: about
    1 for a healthy generator, far more for one that piles its samples on a few real images (mode collapse),
    0 when they reach none (density > 0 implies coverage > 0)."""
    return m.density / m.coverage if m.coverage > 0 else 0.0


def evenly(features: torch.Tensor, most: int) -> torch.Tensor:
    """At most `most` rows, evenly spaced (a batch is ordered by class: every class keeps its share)."""
    if len(features) <= most:
        return features
    return features[torch.linspace(0, len(features) - 1, most, device=features.device).long()]


def collapse_reason(values: Mapping[str, Any], per_class: list[Manifold], margin: float, ratio: float) -> str:
    """Why an evaluation counts as collapsed ("" when it does not): either rule, or both, in words."""
    reasons = []
    if values["msssim"] > values["msssim_real"] + margin:
        reasons.append(f"within-class MS-SSIM {values['msssim']:.3f} above the real {values['msssim_real']:.3f} "
                       f"+ margin {margin:.3g}")
    piled = [c for c, p in enumerate(per_class) if density_over_coverage(p) > ratio]
    if piled:
        worst = max(piled, key=lambda c: density_over_coverage(per_class[c]))
        p = per_class[worst]
        many = len(piled) > 1
        reasons.append(f"class{'es' if many else ''} {', '.join(map(str, piled[:10]))} pile{'' if many else 's'} up "
                       f"on a few of {'their' if many else 'its'} real images (class {worst}: density {p.density:.2f} "
                       f"is {density_over_coverage(p):.1f}x its coverage {p.coverage:.3f}; limit {ratio:.3g}x)")
    return "; ".join(reasons)


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
    per_class, fewest, smallest = m.samples // k, int(counts.min()), int(counts.argmin())
    need = m.prdc_k + 1  # each sample and its k nearest neighbours
    lower_k = " or lower metrics.prdc_k" if m.prdc_k > 1 else ""
    if per_class < need:
        raise ConfigError(f"metrics.samples: precision/recall/density/coverage with metrics.prdc_k={m.prdc_k} need "
                          f"at least {need} per class ({need * k} for {k} classes); got {m.samples}; raise it"
                          f"{lower_k}")
    if fewest < need:
        more = (f"raise metrics.real_samples (got {m.real_samples})" if m.real_samples < len(dataset) else
                f"the dataset has no more images of class {smallest}")
        raise ConfigError(f"metrics.real_samples: class {smallest} has {fewest} real images among the "
                          f"{int(counts.sum())} used; metrics.prdc_k={m.prdc_k} needs at least {need}; {more}{lower_k}")
    size = m.kid_subset_size
    if size is not None and size > min(per_class, fewest):
        side = (f"the {per_class} generated images per class (metrics.samples {m.samples} over {k} classes)"
                if size > per_class else f"class {smallest}'s {fewest} real images")
        raise ConfigError(f"metrics.kid_subset_size: {size} is more than {side}; at most {min(per_class, fewest)}, "
                          "or leave it unset to compare all of them")


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
