"""The in-memory dataset every loader produces, and its on-disk cache."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image

from hpsearch.errors import DataError, reason
from hpsearch.io import atomic_write

_logger = logging.getLogger(__name__)


@dataclass
class ImageDataset:
    """A whole labelled image dataset as one uint8 tensor.

    Attributes:
        images: (N, C, H, W) uint8 in [0, 255].
        labels: (N,) int64 class indices in [0, num_classes).
        class_names: one name per class index.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"images must be uint8 (N, C, H, W); got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        if len(self) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise DataError(f"labels outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def limit_per_class(self, per_class: int | None, seed: int = 0) -> ImageDataset:
        """At most `per_class` images of each class, chosen at random with `seed` (self when None or not fewer).

        The same images for every run with the same data, so limited-data studies compare designs on one subset.
        """
        if per_class is None or int(torch.bincount(self.labels, minlength=self.num_classes).max()) <= per_class:
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        keep = torch.cat([order[self.labels[order] == c][:per_class] for c in range(self.num_classes)]).sort().values
        return ImageDataset(self.images[keep], self.labels[keep], list(self.class_names))

    def fingerprint(self) -> str:
        """Short SHA-256 of images, labels and class names: keys caches derived from the data.

        Computed once per dataset object (hashing CIFAR-10 takes a noticeable fraction of a
        second and every trial's evaluator asks twice); the data are not modified in place
        after it has been asked for.
        """
        if self._fingerprint is not None:
            return self._fingerprint
        digest = hashlib.sha256()
        digest.update(str((tuple(self.images.shape), self.class_names)).encode())
        digest.update(self.images.contiguous().numpy().tobytes())
        digest.update(self.labels.contiguous().numpy().tobytes())
        self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def save(self, path: Path) -> None:
        """Write as .npz (no pickles), atomically."""
        def write(fh: IO[bytes]) -> None:
            np.savez(fh, images=self.images.numpy(), labels=self.labels.numpy(),
                     class_names=np.array(self.class_names, dtype=str))

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> ImageDataset:
        """Read a cache written by `save`."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls(torch.from_numpy(npz["images"].copy()), torch.from_numpy(npz["labels"].astype(np.int64)),
                           [str(n) for n in npz["class_names"]])
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, DataError) as exc:
            raise DataError(f"{path}: unreadable dataset cache ({reason(exc)}); delete it to rebuild") from exc


def resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of uint8 images (N, H, W) or (N, H, W, C) to size×size with Pillow.

    Bilinear with Pillow's antialiasing: it both upsamples (digits 8→16) and downsamples
    (sprites) without aliasing, and needs no torchvision.
    """
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)) for img in images]
    return np.stack(out)


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) uint8 array → (N, C, H, W) contiguous uint8 tensor."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    return torch.from_numpy(np.array(images.transpose(0, 3, 1, 2), order="C"))  # a writable copy
