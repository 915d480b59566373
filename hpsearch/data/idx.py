"""MNIST and Fashion-MNIST from their idx-ubyte.gz files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from hpsearch.data.download import RemoteFile
from hpsearch.errors import DataError

_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

MNIST_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               tuple(u + "train-images-idx3-ubyte.gz" for u in _MNIST_URLS)),
    RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
               tuple(u + "train-labels-idx1-ubyte.gz" for u in _MNIST_URLS)),
]
FASHION_FILES = [
    RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               tuple(u + "train-images-idx3-ubyte.gz" for u in _FASHION_URLS)),
    RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
               tuple(u + "train-labels-idx1-ubyte.gz" for u in _FASHION_URLS)),
]
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped idx-ubyte file (uint8 data only, as MNIST uses) into an array.

    Raises:
        DataError: not gzip, wrong magic number, or fewer bytes than the header promises.
    """
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip idx file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an idx-ubyte file (bad magic number {raw[:4].hex()}; expected 000008xx)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: idx header says shape {shape} ({expected} bytes) "
                        f"but the file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image (N, H, W) and label (N,) idx files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path.parent}: images {images.shape} and labels {labels.shape} do not match "
                        "(expected (N, H, W) and (N,))")
    return images, labels.astype(np.int64)
