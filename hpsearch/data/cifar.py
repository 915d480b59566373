"""CIFAR-10 from the official python tar.gz, read in place with a restricted unpickler."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.data.download import RemoteFile
from hpsearch.errors import DataError

CIFAR10_FILES = [
    RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
               ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),
]
_TRAIN_BATCHES = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
_META = "cifar-10-batches-py/batches.meta"

# The batches are pickles of dicts of numpy arrays; nothing else may be constructed.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _unpickle(blob: bytes, where: str) -> dict[Any, Any]:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # any malformed pickle is a data error, whatever its exception type
        raise DataError(f"{where}: not a CIFAR python batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a CIFAR python batch (a {type(obj).__name__}, expected a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read the five training batches: images (N, 32, 32, 3) uint8, labels (N,), class names.

    Raises:
        DataError: not a tar.gz, a member missing, or a batch of the wrong shape.
    """
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m: _read_member(tar, m, path) for m in [*_TRAIN_BATCHES, _META]}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable tar.gz ({exc})") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in _unpickle(members[_META], f"{path}:{_META}").get("label_names", [])]
    images, labels = [], []
    for member in _TRAIN_BATCHES:
        batch = _unpickle(members[member], f"{path}:{member}")
        data, batch_labels = np.asarray(batch.get("data")), np.asarray(batch.get("labels"))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
            raise DataError(f"{path}:{member}: expected data uint8 (N, 3072) and N labels; "
                            f"got data {data.dtype} {data.shape} and {batch_labels.shape} labels")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels.astype(np.int64))
    if len(names) != 10:
        raise DataError(f"{path}:{_META}: expected 10 label_names; got {len(names)}")
    return np.concatenate(images), np.concatenate(labels), names


def _read_member(tar: tarfile.TarFile, name: str, path: Path) -> bytes:
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise DataError(f"{path}: member {name} missing (expected the official cifar-10-python.tar.gz layout)")
    return fh.read()
