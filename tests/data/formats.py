"""Writers for small files in the real dataset formats (idx gz, CIFAR tar.gz, image folder)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """An idx-ubyte file as MNIST ships it: magic 0x0000080N, big-endian dims, uint8 data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path, n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", images)
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", labels)
    return images, labels


def write_cifar10(path: Path, per_batch: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cifar-10-python.tar.gz with the official member layout and pickled dicts (bytes keys)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            batch_labels = [int(v) for v in rng.integers(0, 10, per_batch)]
            _add(tar, f"cifar-10-batches-py/data_batch_{i}", {b"data": data, b"labels": batch_labels})
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.extend(batch_labels)
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        _add(tar, "cifar-10-batches-py/batches.meta", {b"label_names": names})
    return np.concatenate(images), np.array(labels)


def _add(tar: tarfile.TarFile, name: str, obj: object) -> None:
    blob = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def write_image_folder(root: Path, classes: dict[str, int], size: int = 20) -> None:
    """PNG and JPEG files of solid colours, `count` per class sub-folder."""
    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = Image.new("RGB", (size, size + 4), (40 * c, 10 * i, 200))
            img.save(root / name / f"{i}.{'png' if i % 2 == 0 else 'jpg'}")
