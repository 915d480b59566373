"""Random batches drawn on the training device from a dataset kept there as uint8."""

from __future__ import annotations

from collections.abc import Callable

import torch

from hpsearch.data.base import ImageDataset


class DeviceBatchSampler:
    """Keeps the whole dataset on `device` and samples batches there.

    Small GAN datasets (digits, MNIST, CIFAR-10: at most 150 MB as uint8) fit in any GPU's
    memory, so indexing them there is far cheaper than a DataLoader with worker processes,
    pinned memory and a host-to-device copy per batch. Sampling is with replacement (each
    batch independent), which a GAN step does not mind and which makes resuming exact:
    the only state is the `generator`'s RNG state.

    Args:
        dataset: the images and labels.
        batch_size: images per batch.
        device: where the data lives and batches are made.
        generator: RNG on `device` for indices and flips (its state is checkpointed).
        hflip: flip each image horizontally with probability 1/2.
        channels_last: return batches in channels-last memory format (faster convs on CUDA).
        augment: applied to each batch in [-1, 1] on the device (the classic augmentation of
            `data.augment`, drawing from `generator`).
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, device: torch.device,
                 generator: torch.Generator, hflip: bool = False, channels_last: bool = False,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.images = dataset.images.to(device)  # (N, C, H, W) uint8
        self.labels = dataset.labels.to(device)  # (N,) int64
        self.batch_size = batch_size
        self.generator = generator
        self.hflip = hflip
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.augment = augment

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: images (B, C, H, W) float in [-1, 1] and labels (B,) int64."""
        n = self.images.shape[0]
        idx = torch.randint(n, (self.batch_size,), device=self.images.device, generator=self.generator)
        x = self.images[idx].float().mul_(2.0 / 255.0).sub_(1.0)
        if self.hflip:
            flip = torch.rand(self.batch_size, device=x.device, generator=self.generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.augment is not None:
            x = self.augment(x)
        return x.contiguous(memory_format=self.memory_format), self.labels[idx]
