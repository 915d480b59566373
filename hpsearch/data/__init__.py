"""Datasets by name → one cached uint8 ImageDataset; the device-resident batch sampler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hpsearch import environment
from hpsearch.config import DataConfig
from hpsearch.data.base import ImageDataset, resize_stack, to_nchw
from hpsearch.data.batches import DeviceBatchSampler
from hpsearch.data.cifar import CIFAR10_FILES, read_cifar10
from hpsearch.data.download import ensure_files
from hpsearch.data.idx import FASHION_CLASSES, FASHION_FILES, MNIST_CLASSES, MNIST_FILES, read_idx_pair
from hpsearch.data.image_folder import fingerprint, list_image_folder, read_image_folder
from hpsearch.errors import DataError

__all__ = ["DATASETS", "DeviceBatchSampler", "ImageDataset", "default_data_dir", "load_dataset", "peek_class_names"]

_logger = logging.getLogger(__name__)

# A loader reads the raw dataset into (images (N, H, W[, C]) uint8, labels (N,), class names).
Loader = Callable[[DataConfig, Path], tuple[np.ndarray, np.ndarray, list[str]]]


def default_data_dir() -> Path:
    """`$HPSEARCH_DATA`, else `~/.cache/hpsearch/data` (see `hpsearch.environment`)."""
    return environment.data_dir()


def _digits(cfg: DataConfig, data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16 → 0..255
    return images, bunch.target.astype(np.int64), [str(n) for n in bunch.target_names]


def _idx_loader(name: str, files: list, classes: list[str]) -> Loader:
    def load(cfg: DataConfig, data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
        images_path, labels_path = ensure_files(name, files, data_dir / name, cfg.download)
        images, labels = read_idx_pair(images_path, labels_path)
        return images, labels, list(classes)

    return load


def _cifar10(cfg: DataConfig, data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    (archive,) = ensure_files("cifar10", CIFAR10_FILES, data_dir / "cifar10", cfg.download)
    return read_cifar10(archive)


def _image_folder(cfg: DataConfig, data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes, items = list_image_folder(Path(cfg.root or ""))
    images, labels = read_image_folder(items, cfg.image_size, cfg.channels)
    return images, labels, classes


DATASETS: dict[str, Loader] = {
    "digits": _digits,
    "mnist": _idx_loader("mnist", MNIST_FILES, MNIST_CLASSES),
    "fashion_mnist": _idx_loader("fashion_mnist", FASHION_FILES, FASHION_CLASSES),
    "cifar10": _cifar10,
    "image_folder": _image_folder,
}


def peek_class_names(cfg: DataConfig) -> list[str] | None:
    """The class names of a dataset whose classes can change (an image folder: its sub-folders), without
    reading or caching an image; None for the built-in datasets, whose classes are fixed.

    A command that refuses a dataset whose classes differ from a checkpoint's asks this first, so that
    it refuses before anything is cached or logged.
    """
    return list_image_folder(Path(cfg.root or ""))[0] if cfg.name == "image_folder" else None


def _cache_path(cfg: DataConfig, data_dir: Path) -> Path:
    key = f"{cfg.name}-{cfg.image_size}"
    if cfg.name == "image_folder":
        root = Path(cfg.root or "")
        key += f"-c{cfg.channels}-{fingerprint(list_image_folder(root)[1])}"
    return data_dir / "cache" / f"{key}.npz"


def load_dataset(cfg: DataConfig, data_dir: Path | None = None) -> ImageDataset:
    """The dataset of `cfg` at `cfg.image_size`, from the cache or built (and cached) once.

    Raises:
        DataError: unknown dataset, missing or corrupt files (the message says what to do).
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache = _cache_path(cfg, data_dir)
    if cache.is_file():
        try:
            return _checked(ImageDataset.load(cache), cfg)
        except DataError as exc:  # a cache is derived data: a damaged one is rebuilt, not fatal
            _logger.warning("%s; rebuilding it", exc)
    images, labels, classes = DATASETS[cfg.name](cfg, data_dir)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    dataset = _checked(ImageDataset(to_nchw(resize_stack(images, cfg.image_size)), labels_t, classes), cfg)
    _logger.info("caching %s at %dx%d in %s", cfg.name, cfg.image_size, cfg.image_size, cache)  # once it is usable
    dataset.save(cache)
    return dataset


def _checked(dataset: ImageDataset, cfg: DataConfig) -> ImageDataset:
    """A dataset a conditional GAN can be trained and scored on: two classes or more, at the configured size.

    With one class the domain classifier learns nothing and scores any generator perfectly
    (an untrained one measured FID 0.05 and 100% accuracy).
    """
    where = f"data {cfg.name}" + (f" ({cfg.root})" if cfg.root else "")
    if dataset.num_classes < 2:
        raise DataError(f"{where}: has {dataset.num_classes} class {dataset.class_names}; a class-conditional GAN "
                        "needs at least 2 classes (one sub-folder each for image_folder)")
    size = cfg.image_size
    if dataset.image_size != size or dataset.images.shape[-2] != size:
        raise DataError(f"{where}: images are {tuple(dataset.images.shape[-2:])}, expected {size}x{size}")
    return dataset

