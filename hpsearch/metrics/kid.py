"""Kernel Inception Distance with torchmetrics on precomputed features, its random subsets seeded.

KID (Bińkowski et al. 2018, "Demystifying MMD GANs", ICLR) is the squared MMD between real and
generated features under the cubic polynomial kernel k(x, y) = (x·y / F + 1)³, estimated without
bias at any sample count; FID's bias depends on the model at the 500–1,000 images an evaluation
draws (Chong & Forsyth 2020), KID's does not. torchmetrics' `KernelInceptionDistance` averages the
unbiased estimate over `subsets` random subsets of `subset_size` images of each side; it draws them
with the global torch generator, so `distance` forks that generator and seeds it: the same features
give the same KID, and a training run's random stream is left as it was.
"""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.kid import KernelInceptionDistance

from hpsearch.metrics.fid import Precomputed

DEFAULT_SUBSET = 1000


class FeatureKID:
    """KID between feature sets.

    Args:
        num_features: feature dimension F (the kernel's γ is 1 / F, torchmetrics' default).
        subsets: random subsets the estimate is averaged over.
        subset_size: images per subset on each side; None: the smaller of the two sets and DEFAULT_SUBSET
            (Bińkowski et al.'s and torchmetrics' 1,000: the kernels grow with its square).
    """

    def __init__(self, num_features: int, subsets: int, subset_size: int | None) -> None:
        self.num_features, self.subsets, self.subset_size = num_features, subsets, subset_size
        self._metrics: dict[tuple[int, str], KernelInceptionDistance] = {}  # by subset size and device

    def _metric(self, size: int, device: torch.device) -> KernelInceptionDistance:
        key = (size, str(device))
        if key not in self._metrics:
            with warnings.catch_warnings():  # "will save all extracted features": they are the point here
                warnings.simplefilter("ignore", UserWarning)
                self._metrics[key] = KernelInceptionDistance(
                    feature=Precomputed(self.num_features), subsets=self.subsets, subset_size=size).to(device)
        metric = self._metrics[key]
        metric.reset()
        return metric

    def distance(self, real: torch.Tensor, fake: torch.Tensor, seed: int) -> float:
        """KID of `fake` (M, F) against `real` (N, F); subsets drawn with `seed`.

        Raises:
            ValueError: `subset_size` exceeds M or N (`check_metrics` refuses such configs at load).
        """
        metric = self._metric(self.subset_size or min(len(real), len(fake), DEFAULT_SUBSET), real.device)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mean, _std = metric.compute()
        return float(mean)
